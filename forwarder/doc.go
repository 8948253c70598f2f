// Package forwarder replays a local stream's shards to an upstream Kinesis
// stream (AWS or any Kinesis-compatible endpoint) with PutRecords.
//
// # Guarantees
//
//   - At least once. Every stored record is sent until the upstream
//     accepts it, unless retention deletes it first; such records, and
//     records too large for Kinesis after the envelope (over 1 MiB with
//     the key), are logged with counts and counted in Lag().Lost.
//   - Order per partition key. For every key, the first occurrences
//     upstream come in local sequence order. A PutRecords request never
//     holds two records of one key, and while a key has a request in
//     flight or a failed record waiting, nothing newer of that key is
//     sent, not even in another concurrent request. Only the failed
//     entries of a partial failure are resent. A child shard is read only
//     after all its parents are closed, read to the end and acknowledged.
//   - Duplicates only from ambiguous failures (timeouts, connection
//     resets and 5xx after the upstream may have stored the data) and
//     from restarts, never from resending a partial success whole. The
//     json envelope carries a stable id (gateway/stream/shard/seq) for
//     consumers to drop them.
//   - Progress is a low watermark per local shard (every record at or
//     below it is acknowledged upstream), committed through the store's
//     checkpoints under consumer "forwarder:<target_stream>" every
//     CommitInterval and at Close, so a restart resends at most what was
//     in flight or acknowledged after the last commit.
//
// # Behaviour
//
// Batches hold up to 500 entries and 5 MiB (1 MiB per entry including the
// key). A batch goes when it is full or when its oldest record has waited
// `linger` since it arrived, so a backlog goes at full speed and live
// records wait a little for company. Up to max_in_flight requests run at
// once.
//
// Retries never stop. Whole-request failures (throttling, 5xx, timeouts,
// connection errors) back off exponentially with full jitter (100ms base,
// 30s cap, reset by a success). Throttled entries pace their upstream
// shard: the forwarder lists the upstream hash ranges (ListShards) and
// maps keys to shards itself, so keys bound for other shards keep going;
// without ListShards it paces key by key. Permanent errors (stream not
// found, access denied, bad or expired credentials, KMS key unusable)
// pause the forwarder with an error log saying what to fix; one probe
// request goes every 1s, 2s, 4s ... up to 30s, and forwarding resumes by
// itself once it is accepted. max_bytes_per_sec caps the upstream link
// with a token bucket.
//
// With `aggregate: true`, consecutive records of one key are packed into
// KPL aggregated records (see kpl.go), which succeed or fail whole; a lone
// record goes as itself, as the KPL does.
//
// Read-ahead is bounded (MaxBufferedRecords, MaxBufferedBytes). A hot key
// without aggregation moves at one record per round trip, because its next
// record may go only when the previous one is acknowledged; if it fills
// the read-ahead window, other keys of the same shard wait behind it.
// Aggregation removes that limit.
package forwarder
