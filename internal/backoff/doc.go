// Package backoff is the one retry delay of weir's clients of Kinesis
// (the forwarder) and of weir's own API (gateway/consumer): exponential
// with full jitter, so many retriers that failed together spread out
// instead of retrying in step (attempt n waits a uniformly random time in
// [0, min(Cap, Base·2^n)]).
package backoff
