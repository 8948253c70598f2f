// Package s3sink writes archives of a local stream to S3 or an
// S3-compatible store (MinIO, Ceph RGW, ...): Kinesis Data Firehose's job,
// done at the edge. It is the sink of forwarders of kind s3; the
// forwarder engine reads a shard, cuts its records into runs at the
// buffering hints (max_object_bytes, max_object_age), calls Writer.Put
// for each run, retries what Classify calls transient, pauses on what it
// calls permanent, and checkpoints after each Put.
//
// # Objects
//
// One object holds an ordered run of one local shard, encoded as jsonl
// (one JSON envelope per line, as the Kinesis forwarder's `envelope:
// json`, data in base64) or raw (length-prefixed binary records with a
// checksum each), compressed with gzip, zstd or not at all. FORMAT.md
// describes both byte for byte and how to read them; NewReader and Decode
// read them in Go.
//
// An object's key is
//
//	<prefix><stream>-<shard>-<first seq, 20 digits>-<gateway>.<format>[.gz|.zst]
//
// for example telemetry/2026/03/04/05/telemetry-shardId-000000000002-00000000000000000100-gw-1.jsonl.gz.
// The prefix template (default {stream}/{yyyy}/{MM}/{dd}/{HH}/) is
// rendered with the arrival time of the first record, in UTC. The key
// depends on nothing but the first record and the configuration, so a
// Put retried after a crash — even one the restarted engine cut at a
// later record — overwrites the same object: the bucket never holds the
// same record twice under one gateway. The gateway's id is in the name so
// that a fleet can share a bucket.
//
// User metadata (x-amz-meta-*) carries gateway, stream, shard, first-seq,
// last-seq, records, first-arrival, last-arrival, format and compression,
// so a reader can find a sequence range without downloading.
// Content-Type is application/x-ndjson (jsonl) or application/octet-stream
// (raw); Content-Encoding is gzip or zstd when compressed. Every request
// carries Content-MD5.
//
// Objects larger than a part (8 MiB by default) are uploaded in parts; a
// failed multipart upload is aborted. One that a crash leaves open is not:
// give the bucket a lifecycle rule AbortIncompleteMultipartUpload (as AWS
// recommends for every bucket), or its parts are kept and billed.
//
// # Credentials
//
// From aws-sdk-go-v2's default chain (environment, shared config and
// credentials files, `profile`, SSO, web identity, container roles). The
// EC2 instance metadata service is off unless AWS_EC2_METADATA_DISABLED=false
// is set, because probing it on a gateway that is not an EC2 instance
// delays the first upload by seconds. The IAM policy needs s3:PutObject and
// s3:AbortMultipartUpload on arn:aws:s3:::BUCKET/PREFIX*.
package s3sink
