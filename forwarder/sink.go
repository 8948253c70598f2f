package forwarder

import (
	"context"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// sink is what differs between forwarder kinds: how records are encoded
// and how a batch goes out and is acknowledged. Everything else (reading,
// per-key ordering, batching, retries with backoff, pausing on permanent
// errors, watermarks and checkpoints, lag and loss accounting, the shared
// uplink) is the engine's and the same for every kind.
//
// A batch holds at most one item per partition key, and nothing newer of a
// key is sent while one of its items is in flight or waiting to be
// resent; an item holds one record, or with limits.multi several
// consecutive records of its key that succeed or fail together. So a sink
// keeps the per-key order by sending the entries of each item in order
// and reporting one outcome per item.
type sink interface {
	// limits are the planner's batch limits for this kind.
	limits() limits
	// encode turns a local record into what is sent and buffered for it;
	// an error means it can never be sent (too large, say): it is logged,
	// skipped and counted as lost.
	encode(shard string, r *shards.Record) ([]byte, error)
	// send delivers one batch. An error fails the whole batch (classify
	// says whether to retry or pause); otherwise out has one result per
	// item.
	send(ctx context.Context, b *batch) (sendOutcome, error)
	// classify sorts a send error.
	classify(err error) failure
	// close releases connections when the engine stops.
	close()
}

// sendOutcome is a batch's per-item results.
type sendOutcome struct {
	res []entryResult
	// perm is set when some item failed in a way an operator must fix;
	// the engine pauses after applying the results.
	perm *failure
	// lastErr is the last per-item error, for Lag.LastError.
	lastErr string
}

// shardMapper is optional: a sink that can list the upstream's shards lets
// the engine pace throttled keys per upstream shard instead of per key.
type shardMapper interface {
	mapsShards() bool // false: no shard listing available after all
	upstreamShards(ctx context.Context) ([]upShard, error)
}

// retryAfterError carries a server's Retry-After: the engine waits at
// least that long before the next request.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }
