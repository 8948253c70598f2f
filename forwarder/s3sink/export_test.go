package s3sink

import "io"

// Compress compresses b alone as Encode would, for the benchmarks.
func Compress(w io.Writer, compression string, b []byte) error {
	cw, err := compressor(w, compression)
	if err != nil {
		return err
	}
	if _, err := cw.Write(b); err != nil {
		cw.abandon()
		return err
	}
	return cw.Close()
}

// AppendLine is appendLine, for the test that holds it to encoding/json.
var AppendLine = appendLine
