package s3sink

// AppendLine is appendLine, for the test that holds it to encoding/json.
var AppendLine = appendLine
