// Package shards gives the bytes in the logs their meaning as Kinesis
// streams: a stream is a set of shards dividing the 128-bit MD5 hash space of
// partition keys; the stream is one write-ahead log (package wal) and each
// shard a lane of it (wal/FORMAT.md, "Lanes"), so one commit group and one
// fdatasync cover the records of every shard that arrived together. The
// log's indexes are the sequence numbers: a shard's increase, with the
// other shards' records in their gaps.
//
// The Store is the single write path (MQTT publishes and Kinesis PutRecords
// both call Append, with the same limits and the same durability) and the
// single read path (Shard.Read from a position plus Shard.Changed to tail
// without polling), used alike by the Kinesis API, `weir dump`/`read` and the
// forwarder. Checkpoints are one store for all readers.
//
// Hash ranges: N shards split [0, 2^128-1] as kinesalite does: shard i owns
// [i*floor(2^128/N), (i+1)*floor(2^128/N)-1] and the last shard ends at
// 2^128-1.
//
// A record's position is its log index, starting at 1; checkpoints and
// every reader inside weir use it, and Shard.Read returns where to go on
// (past other shards' records it passed over). Counts of a shard's records
// come from the log's lane tables (Shard.Records, Shard.RecordsIn), never
// from subtracting positions. The API shows a position as a sequence number
// of format v2 that also encodes the shard (FormatSeq, ParseSeq; FORMAT.md).
// A child shard of a reshard starts after its parents' end; readers must
// still read parents to their end before children. A stream written before
// one log per stream keeps reading each shard's old log in place until
// retention empties it (migrate.go).
//
// Encrypted streams (StartStreamEncryption) store each record appended
// while encrypted as an AES-256-GCM envelope naming its key, in the same
// wal frame a plain record would use; ENCRYPTION.md has the threat model,
// the key files and the format.
//
// Capacity modes: a provisioned stream keeps the shards it is given; an
// on-demand one (mode.go, persisted in stream.json) is split and merged by
// the Autoscaler as its write rate changes, through the same Split and
// Merge as the API's. The policy (thresholds, windows and why) is written
// at the top of autoscale.go and in gateway/api/API.md.
//
// On disk (under the data directory):
//
//	LOCK                                  flock held by the running gateway
//	streams/<stream>/stream.json          shard map, version 3 (FORMAT.md; atomic: temp, fsync, rename, fsync dir)
//	streams/<stream>/log/*.seg            the stream's log, its shards as lanes (see wal/FORMAT.md)
//	streams/<stream>/<shardId>/*.seg      a shard's log from before version 3, read until emptied
//	checkpoints/<stream>/<consumer>.json  a consumer's positions by shard (atomic)
package shards
