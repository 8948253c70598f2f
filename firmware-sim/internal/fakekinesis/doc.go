// Package fakekinesis is a tiny in-memory Kinesis endpoint for the
// simulator's tests: enough of the JSON 1.1 protocol (ListShards paged one
// shard per page, GetShardIterator, GetRecords paged two records per
// page) to drive aws-sdk-go-v2's real client through verify's reader.
package fakekinesis
