// Package jsonstr writes JSON string contents byte for byte as
// encoding/json does, without reflection or an allocation per value. The
// GetRecords encoder and the S3 sink's jsonl lines build their JSON by
// hand on hot paths; both must quote device-supplied text (topics, keys,
// user properties) exactly as the standard library would, so they share
// this one escaper, and a fuzz test holds it to encoding/json.
package jsonstr
