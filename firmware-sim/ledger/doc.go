// Package ledger records every message the broker acknowledged, one JSON
// object per line, so that a later `firmware-sim verify` can prove each of
// them reached the stream, once and in order:
//
//	{"device":"dev-00001","seq":17,"key":"dev-00001","ack":"2025-11-25T21:04:05.123456789Z"}
//
// Fields:
//   - device: the device name, as written into the payload.
//   - seq: the device's sequence number (starts at 1, +1 per message).
//   - key: the partition key the gateway's route is expected to derive for
//     this message, rendered from --ledger-key (default "{id}", i.e. the
//     device name, which is also the topic level used by the default
//     route devices/{id}/telemetry → partition_key "{topic.1}").
//   - ack: when the acknowledgement arrived (RFC 3339, nanoseconds, UTC).
//     For QoS 0 there is no acknowledgement: it is when paho wrote the
//     message to the socket, and QoS 0 losses are expected.
//   - probe (optional): "unrouted" or "oversize" for deliberate misbehaviour
//     messages that a correct gateway may acknowledge but need not store;
//     verify never counts them as missing.
//
// Lines are buffered and flushed on Flush (the simulator flushes every
// second, at exit and on SIGINT/SIGTERM). Within one device, lines are in
// acknowledgement order.
package ledger
