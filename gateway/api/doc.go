// Package api serves a store over the Kinesis Data Streams wire protocol, so
// that a stock AWS SDK, the AWS CLI or the KCL pointed at the gateway
// (endpoint http://127.0.0.1:4588) reads and writes its streams unmodified.
// API.md in this directory is the reference for clients; this comment is
// the map for maintainers.
//
// Protocol. HTTP/1.1 or HTTP/2. POST / with X-Amz-Target "Kinesis_20131202.<Operation>" or
// "WeirGateway_20261125.<Operation>". Bodies are JSON 1.1
// (application/x-amz-json-1.1: blobs base64, timestamps epoch seconds with
// a fraction) or CBOR 1.1 (application/x-amz-cbor-1.1, sent by the AWS SDK
// for Java v2 and so the KCL: blobs as byte strings, timestamps as tag 1
// around integer epoch milliseconds — see timestamp.go). The answer uses
// the request's format. Errors are HTTP 400 (500 InternalFailure, 503
// ServiceUnavailable, 413 for a body over 12 MiB) with
// {"__type": "<Exception>", "message": "..."} and X-Amzn-ErrorType.
// StreamName or StreamARN
// (arn:aws:kinesis:<any region>:<any account>:stream/<name>) are accepted
// wherever Kinesis takes either; consumer operations also take StreamName.
//
// Security (API.md "Authentication"). Every request first passes the Host
// check (hosts.go: localhost, IP literals and api.allowed_hosts, against
// DNS rebinding). With api.credentials_file, POST / then reads the body
// (MaxBodyBytes) and verifies its SigV4 signature (sigv4.go: header and
// presigned forms, body hash, 5-minute skew) against the keys of
// credentials.go, whose derived signing keys are cached per (key, day,
// region); a failure is counted, logged and held by the per-address
// failure guard (guard.go). The key then rides in request.who (and the
// context, AccessKeyID) and each handler checks the stream it resolves
// (access.go: named, stream, allow); the permission of every operation is
// in the one table, Server.operations. Without credentials_file nothing is
// checked but the Host, and New refuses a non-loopback listen unless
// allow_anonymous. TLS certificates come from an atomic pointer, so
// ReloadCredentials swaps them and the keys without a restart.
//
// Store errors map to exceptions in errors.go (toAPIError). The ones a
// client's retry logic depends on: a throttled shard and a full stream
// (max_bytes or disk) are both ProvisionedThroughputExceededException,
// the one code SDKs, the KPL and PutRecords entries all treat as "not
// stored, back off"; a store that is shutting down is 503
// ServiceUnavailable (retried); a shard with a sticky I/O error is 500
// InternalFailure.
//
// Iterators and page tokens (iterator.go) carry their whole state, signed
// with HMAC-SHA256 (truncated to 128 bits) under Options.Secret, so the
// server keeps no per-reader state and a restarted gateway with the same
// secret honours them. Changing a byte yields InvalidArgumentException;
// an iterator older than 5 minutes ExpiredIteratorException; an iterator
// of a deleted stream ResourceNotFoundException even if the name was
// reused. A position that retention has since deleted continues at the
// trim horizon, as in Kinesis (the reader is not told; GetCheckpoints
// reports such losses for registered consumers).
//
// GetRecords returns at most 10,000 records and about 10 MiB. At the end of
// a closed shard (after a split or merge) NextShardIterator is absent and
// ChildShards lists the children, possibly together with the shard's last
// records. MillisBehindLatest is the age of the next unread record (0 when
// caught up).
//
// Read limits (readlimit.go) are per shard and shared by all its readers:
// cfg.ReadLimits.CallsPerSec GetRecords calls and BytesPerSec bytes (data
// and keys), 0 = unlimited; past them ProvisionedThroughputExceededException.
// A call may read at most the byte balance, so readers get a steady flow
// instead of Kinesis's 10 MiB burst and 5 s penalty. The long-poll
// (WeirGateway_20261125.GetRecords) is exempt from the calls/s limit — it
// cannot spin: with no data it waits, and with data every call returns
// records — and waits for byte budget instead of failing, up to its
// WaitMillis; it still draws on the shared byte budget. GetShardIterator is
// not rate limited.
//
// Weir operations (WeirGateway_20261125.*, documented in API.md):
//   - CommitCheckpoint {StreamName|StreamARN, ConsumerName, ShardId,
//     SequenceNumber}: the consumer processed the shard up to and including
//     SequenceNumber; answered after the checkpoint is fsynced. A number
//     beyond the shard's last record is refused (InvalidArgumentException);
//     going backwards is allowed.
//   - GetCheckpoints {StreamName|StreamARN, ConsumerName} -> {StreamName,
//     Checkpoints: [{ShardId, SequenceNumber, Status OK|TRIMMED|NONE,
//     RecordsLost, LastSequenceNumber, Closed, EndingSequenceNumber}]} for
//     every shard still listed. TRIMMED means retention deleted
//     RecordsLost = trimHorizon-1-checkpoint records the consumer never
//     processed; it is a report, not an error, so a consumer continues at
//     the trim horizon.
//   - GetRecords: Kinesis GetRecords plus WaitMillis (0..20000). With no
//     new records it waits on the shard's commit notification until data
//     arrives, the shard closes, the time is up or the server closes, and
//     so wakes readers within milliseconds of an append. Records also carry
//     the MQTT metadata: Topic, ClientId, QoS, UserProperties.
//
// Consumers (RegisterStreamConsumer etc.) are the store's checkpoint
// owners (shards.Checkpoints) and the subscribers of enhanced fan-out:
// SubscribeToShard (ops_subscribe.go) answers with an event stream
// (AWS event-stream framing by smithy-go's encoder) that pushes records
// from the shard's commit notification, one subscription per consumer
// and shard, 5 minutes each, within a byte budget of the consumer's own.
// A result implementing responseStreamer writes its own response; that
// is the one way an operation escapes serveAPI's encode step.
//
// HTTP versions (server.go, protocols): HTTP/1.1 and HTTP/2 on the one
// listener — h2c with prior knowledge on a plain port, h2 by ALPN with
// TLS — so the JS SDK v3's default HTTP/2 handler works unmodified.
//
// GET /metrics serves the registry given in Options (the daemon's, which
// every part registers on) with promhttp; the API's own collector reports
// the store per stream, shard and consumer and the API's counters at
// scrape time. GET /healthz is liveness (200 while the process answers);
// GET /readyz is readiness (503 with the reasons when a shard failed, a
// listener is down or the gateway is stopping). API.md lists the families.
package api
