// Package wal is weir's write-ahead log: an append-only sequence of byte
// records with dense uint64 indexes, stored in checksummed segment files.
// Every record belongs to a lane (Log.Lane), so one log can carry several
// interleaved record streams, read apart, that share its group commits and
// fdatasyncs: package shards keeps a Kinesis stream in one log, a shard per
// lane. It knows nothing about streams, keys or MQTT; package shards gives
// the records their meaning.
//
// # Usage
//
//	l, err := wal.Open(dir, wal.Options{Name: "shardId-000000000000", Logger: log})
//	var ce *wal.CorruptionError
//	if errors.As(err, &ce) {
//		// damage in a sealed segment: ce.Segment and ce.Offset say where
//	}
//	idx, err := l.Append(ctx, payload)     // returns once durable (SyncAlways)
//	first, err := l.AppendBatch(ctx, ps)   // contiguous, all or nothing
//
//	for { // a tailing reader
//		ch := l.Notify() // before reading, so no commit is missed
//		next, err = l.ReadFrom(next, 500, 1<<20, deliver)
//		if next > l.LastIndex() {
//			<-ch
//		}
//	}
//
//	removed, err := l.TruncateFront(horizon) // retention: whole sealed segments only
//
// # Guarantees
//
//   - SyncAlways (default): Append returns an index only after fdatasync
//     returned for the write that carried the record; the record survives a
//     power cut. SyncInterval: Append returns after write(2); a background
//     fdatasync every SyncInterval bounds the loss under power cut to
//     SyncInterval plus one sync duration. A process crash loses nothing
//     acknowledged in either mode.
//   - Readers see only committed records (LastIndex): with SyncAlways only
//     durable ones, so nothing read can later vanish in a crash.
//   - Every frame carries a CRC-32C over its index, header and payload; it
//     is checked on every read. A sealed segment ends with a footer (record
//     count, sparse index, min/max tag, CRC of the whole segment): Open
//     reads footers, not frames, so its time does not grow with the data
//     retained; a background scrub, the first read of a segment, Verify
//     and VerifyDir (`weir verify`) check the frames against the footer.
//     Open cuts a torn tail of the newest segment back to the last good
//     record, copying the cut bytes to <segment>.<offset>.broken first and
//     logging it; other damage gives *CorruptionError (errors.Is
//     ErrCorrupt) naming shard, file and offset. It never silently drops a
//     sealed record.
//   - A failed write or fsync is sticky: every later append fails with
//     ErrFailed (wrapping the cause) and the log never retries the fsync.
//     Committed records stay readable. Reopen the log to recover.
//   - Running out of space while creating the next segment is not sticky:
//     the appends that needed the segment fail with ErrNoSpace (also
//     errors.Is syscall.ENOSPC), nothing of them is written, and the next
//     append tries again.
//
// # Concurrency and cost
//
// All methods are safe for concurrent use. One committer goroutine owns the
// files: concurrent appends queue up while it syncs, and the next group goes
// out as one write and one fdatasync (group commit), so throughput grows
// with the number of waiting appenders. The next segment is prepared by a
// background goroutine, in the file of a segment retention deleted when
// there is one (else a zero-filled new file), so a commit's fdatasync
// changes no file metadata and no segment byte is written twice. Readers use positional reads on shared, reference-counted file
// handles and never hold whole segments in memory; a reader racing
// TruncateFront gets its record or ErrCompacted. Memory per log is the
// commit buffer (up to MaxBatchBytes) plus a sparse index of 4 bytes per 32
// records (about 0.6 MiB per GiB of 200-byte records).
//
// The on-disk format (version 2; version 1 data is read in place), recovery
// steps, reuse and verification rules and the reasons for not using
// tidwall/wal are in FORMAT.md next to this file.
package wal
