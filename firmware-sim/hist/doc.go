// Package hist is a small HDR-style latency histogram: log-linear buckets
// (128 linear sub-buckets per power of two), so any recorded value is
// reported with a relative error below 1/256 (< 0.4%), well inside the 1%
// the simulator promises for publish→ack percentiles.
//
// Recording is lock-free (one atomic add per bucket) because acks arrive on
// thousands of paho goroutines at once; reading walks the bucket array.
// Values are plain int64 (the simulator records nanoseconds); negative
// values are recorded as zero and values above 2^40 are clamped into the
// top bucket while Max still reports them exactly.
package hist
