package wal

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

type reqKind uint8

const (
	kindRecords    reqKind = iota // Append / AppendBatch: a waiter reads first/err
	kindAsync                     // AppendAsync: the committer calls cb and recycles
	kindDeferred                  // AppendDeferred: the completer calls c and recycles
	kindSeal                      // Seal: control, ordered after everything queued; every kind from here on is control
	kindRoll                      // Roll: control, ordered after everything queued
	kindSealLane                  // Lane.Seal: control, ordered after everything queued
	kindUnsealLane                // Lane.Unseal: likewise
)

// Request states. A waiter whose context ends can withdraw its request
// only while it is still queued; once the committer claimed it, the
// payload is being copied and the waiter waits for stEncoded before it
// returns, so the caller may reuse its buffer.
const (
	stQueued int32 = iota
	stClaimed
	stEncoded
	stCanceled
)

type request struct {
	kind     reqKind
	lane     uint16    // of every record of the request (lane.go)
	one      [1][]byte // Append's payload, without allocating a slice
	payloads [][]byte
	own      []byte // AppendAsync's copy of its payload
	state    atomic.Int32
	first    uint64
	err      error
	done     chan struct{} // capacity 1; reused with the request
	cb       func(index uint64, err error)
	c        Completion
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

func getRequest(kind reqKind) *request {
	r := requestPool.Get().(*request)
	r.kind = kind
	r.state.Store(stQueued)
	return r
}

// maxPooledCopy keeps one huge async payload from pinning memory in the pool.
const maxPooledCopy = 64 << 10

func putRequest(r *request) {
	r.one[0] = nil
	r.payloads = nil
	r.cb = nil
	r.c = nil
	r.err = nil
	r.first = 0
	r.lane = 0
	if cap(r.own) > maxPooledCopy {
		r.own = nil
	}
	r.own = r.own[:0]
	requestPool.Put(r)
}

// Append stores payload and returns its index once the record is committed:
// durable with SyncAlways, written with SyncInterval. Concurrent appends
// share one write and one fdatasync. payload must not change until Append
// returns. If ctx ends first, Append returns ctx's error; a record that the
// committer had already taken may still be stored (like a lost ack).
func (l *Log) Append(ctx context.Context, payload []byte) (uint64, error) {
	return l.appendLane(ctx, 0, payload)
}

func (l *Log) appendLane(ctx context.Context, lane uint16, payload []byte) (uint64, error) {
	if len(payload) > MaxRecordSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	r := getRequest(kindRecords)
	r.lane = lane
	r.one[0] = payload
	r.payloads = r.one[:]
	return l.submit(ctx, r)
}

// AppendBatch stores payloads as contiguous indexes starting at first, all
// or none: they are acknowledged together after one sync.
func (l *Log) AppendBatch(ctx context.Context, payloads [][]byte) (first uint64, err error) {
	return l.appendBatchLane(ctx, 0, payloads)
}

func (l *Log) appendBatchLane(ctx context.Context, lane uint16, payloads [][]byte) (first uint64, err error) {
	if len(payloads) == 0 {
		return l.LastIndex() + 1, nil
	}
	var total int64
	for _, p := range payloads {
		if len(p) > MaxRecordSize {
			return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(p))
		}
		total += frameSize(len(p))
	}
	if total > MaxSegmentSize {
		// A batch lives in one segment, whose offsets must fit 32 bits.
		return 0, fmt.Errorf("%w: batch of %d bytes", ErrTooLarge, total)
	}
	r := getRequest(kindRecords)
	r.lane = lane
	r.payloads = payloads
	return l.submit(ctx, r)
}

// AppendAsync queues payload (copied) without waiting, for best-effort
// records. done, if not nil, is called from the committer goroutine once
// the record is committed or failed: it must be quick and must not append
// to the same log synchronously. ErrBusy means the queue is full.
func (l *Log) AppendAsync(payload []byte, done func(index uint64, err error)) error {
	return l.appendAsyncLane(0, payload, done)
}

func (l *Log) appendAsyncLane(lane uint16, payload []byte, done func(index uint64, err error)) error {
	if len(payload) > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	if err := l.Err(); err != nil {
		return err // the sticky failure is why the log stopped: report it first
	}
	r := getRequest(kindAsync)
	r.lane = lane
	r.own = append(r.own[:0], payload...)
	r.one[0] = r.own
	r.payloads = r.one[:]
	r.cb = done
	l.sendMu.RLock()
	if l.state != stateOpen {
		err := l.stateErr()
		l.sendMu.RUnlock()
		putRequest(r)
		return err
	}
	select {
	case l.queue <- r:
		l.sendMu.RUnlock()
		l.lingerNote()
		return nil
	default:
		l.sendMu.RUnlock()
		putRequest(r)
		return ErrBusy
	}
}

// Completion receives the outcome of AppendDeferred.
type Completion interface {
	// Committed is called once the record is committed (durable with
	// SyncAlways) with its index, or with the error that refused it. It
	// runs on the log's completion goroutine, in append order, one call at
	// a time: it must not wait for the log.
	Committed(index uint64, err error)
}

// AppendDeferred queues payload and returns without waiting for the
// commit: c.Committed reports it, after the group's sync. It is Append for
// callers that have something better to do than wait (the MQTT read
// goroutine goes back to reading), and it saves the wake-up of a parked
// appender per record: the acknowledgements of a whole group are sent by
// one goroutine. payload is not copied and must not change until
// Committed is called. If the queue is full it waits for room, but not
// past ctx. When it returns an error, c is never called.
func (l *Log) AppendDeferred(ctx context.Context, payload []byte, c Completion) error {
	return l.appendDeferredLane(ctx, 0, payload, c)
}

func (l *Log) appendDeferredLane(ctx context.Context, lane uint16, payload []byte, c Completion) error {
	if len(payload) > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	r := getRequest(kindDeferred)
	r.lane = lane
	r.one[0] = payload
	r.payloads = r.one[:]
	r.c = c
	return l.enqueue(ctx, r)
}

// stateErr: caller holds sendMu.
func (l *Log) stateErr() error {
	switch l.state {
	case stateSealed:
		return ErrSealed
	case stateClosed:
		return ErrClosed
	}
	return nil
}

// enqueue hands r to the committer, waiting for room in the queue but not
// past ctx. On error r is recycled.
func (l *Log) enqueue(ctx context.Context, r *request) error {
	if err := l.Err(); err != nil {
		putRequest(r)
		return err
	}
	l.sendMu.RLock()
	if l.state != stateOpen {
		err := l.stateErr()
		l.sendMu.RUnlock()
		putRequest(r)
		return err
	}
	select {
	case l.queue <- r:
	default:
		// Full queue: wait, but not past ctx. Holding the read lock here
		// is fine: Close takes the write lock only after we leave, and the
		// committer keeps draining until then.
		select {
		case l.queue <- r:
		case <-ctx.Done():
			l.sendMu.RUnlock()
			putRequest(r)
			return ctx.Err()
		}
	}
	l.sendMu.RUnlock()
	l.lingerNote()
	return nil
}

func (l *Log) submit(ctx context.Context, r *request) (uint64, error) {
	if err := l.enqueue(ctx, r); err != nil {
		return 0, err
	}
	select {
	case <-r.done:
		first, err := r.first, r.err
		putRequest(r)
		return first, err
	case <-ctx.Done():
		if r.state.CompareAndSwap(stQueued, stCanceled) {
			// The committer will skip it; it still holds the pointer, so
			// the request is not recycled.
			return 0, ctx.Err()
		}
		for r.state.Load() == stClaimed {
			time.Sleep(20 * time.Microsecond)
		}
		select {
		case <-r.done:
			// Finished meanwhile: the outcome is known, report it.
			first, err := r.first, r.err
			putRequest(r)
			return first, err
		default:
		}
		return 0, fmt.Errorf("wal: shard %q: append abandoned, record may still be stored: %w", l.opts.Name, ctx.Err())
	}
}
