// Package verify proves a fleet run's ledger against a stream: every
// acknowledged message must be there, and each device's messages must
// appear in sequence order. It reads the stream through any
// Kinesis-compatible API (the gateway's own, kinesalite, AWS) with
// aws-sdk-go-v2: ListShards, then each shard from TRIM_HORIZON with
// GetShardIterator/GetRecords, parents before children so that a reshard
// cannot fake a reordering.
//
// Per device it reports:
//   - missing: acknowledged (in the ledger) but not in the stream;
//   - duplicated: in the stream more than once (at-least-once delivery
//     makes these legitimate; they fail only in strict mode);
//   - out of order: a first occurrence with a lower sequence number than
//     one read before it, in shard order;
//   - extra: in the stream but not in the ledger (QoS 0, acks lost to a
//     disconnect, given-up messages): informational.
//
// Records are matched by the device name and sequence number in their
// payload (JSON, CBOR or the binary header, see package payload), either
// raw or wrapped in the forwarder's JSON envelope
// ({"id":...,"data":"<base64>",...}).
package verify
