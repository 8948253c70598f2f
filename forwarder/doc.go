// Package forwarder replays a local stream's shards to a sink: an upstream
// Kinesis stream (AWS or any Kinesis-compatible endpoint) with PutRecords
// (kind kinesis, the default), an HTTP endpoint (kind http) or another
// MQTT broker (kind mqtt); kind s3 (package s3sink) plugs in the same way.
//
// # Sinks
//
// One engine (engine.go, read.go, send.go, planner.go, lane.go) does for
// every kind the reading, the per-key order, batching, retries with
// backoff, pausing on permanent errors, the low-watermark checkpoints
// (consumer "forwarder:<name>"; for kinesis name defaults to
// target_stream), lag and loss accounting. A kind is a small sink
// (sink.go): how a record is encoded, how a batch goes out and what its
// per-item outcome is, and which errors are permanent.
//
//   - kinesis (kinesis.go): PutRecords, per-entry results, upstream shard
//     pacing, KPL aggregation; everything below.
//   - http (http.go): POSTs the JSON envelopes of a batch as a JSON array
//     or NDJSON, optionally gzipped, with headers from the config (values
//     of credentials from environment variables or files, never inline).
//     2xx delivers the batch; 429, 408, 5xx, timeouts and connection
//     errors are retried with backoff, at least as late as Retry-After;
//     any other 4xx pauses the sink (see below). A POST succeeds or fails
//     whole, so a batch may hold several records of one key, in order,
//     and a hot key is not limited to one record per round trip.
//   - mqtt (mqtt.go): a bridge. One QoS 1 PUBLISH per record to a topic
//     template (default: the original topic), the PUBACK being the
//     delivery point; TLS with client certificates (AWS IoT Core style).
//     MQTT 3.1.1: paho.mqtt.golang has no MQTT 5. A batch is an in-flight
//     window published in order on one connection; a lost connection fails
//     what was unacknowledged, which is resent (duplicates possible) before
//     anything newer of its key, so the first occurrences stay in order.
//   - s3 (s3.go, package s3sink): the engine runs it in shard-run mode
//     (limits.byShard): an item is a run of consecutive records of one
//     shard, one run per shard in flight, resent as it was; the watermark
//     moves a whole object at a time, so an object retried after a restart
//     starts at the same record and gets the same name.
//
// Sinks share the uplink (uplink.go, `uplink: max_bytes_per_sec`): a token
// bucket at the link's rate and a scheduler that gives each send to the
// waiting sink of the highest `priority`, equal priorities taking turns by
// bytes sent. A grant is at most a quarter second of the link, so a
// high-priority record waits at most about that behind a bulk batch;
// sinks with large items (s3) meter their uploads 16 KiB at a time
// (meter.go). A sink's own max_bytes_per_sec caps it on top.
//
// A `filter` (filter.go) makes a sink deliver only records whose topic
// matches one of its MQTT filters and whose JSON payload matches its
// conditions; the others still move the watermark (Lag.Filtered).
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
//     checkpoints under consumer "forwarder:<name>" every
//     CommitInterval and at Close, so a restart resends at most what was
//     in flight or acknowledged after the last commit.
//
// # Behaviour of kind kinesis
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
