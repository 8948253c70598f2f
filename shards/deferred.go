package shards

import (
	"context"
	"errors"
	"sync"

	"github.com/weir-gateway/weir/wal"
)

// Completion receives the outcome of Store.AppendDeferred.
type Completion interface {
	// Appended is called once the record is durable (fsync: always) or
	// written (interval), or refused. It runs on the shard log's
	// completion goroutine, in append order per shard, and must be quick.
	Appended(a Appended, err error)
}

// AppendDeferred is Append for callers that do not wait: it validates,
// routes and queues the record, and c reports the outcome later. An error
// it returns (validation, rate limit, a closed or failed shard) means the
// record was not queued and c is never called. It waits, as Append does,
// for the rate limiter when the stream asks for backpressure and for room
// in the commit queue. Records of one key queued one after another are
// stored in that order.
func (s *Store) AppendDeferred(ctx context.Context, stream string, rec *Record, o AppendOptions, c Completion) error {
	st, err := s.Stream(stream)
	if err != nil {
		return err
	}
	return st.appendDeferred(ctx, rec, o, c)
}

func (st *Stream) appendDeferred(ctx context.Context, rec *Record, o AppendOptions, c Completion) error {
	cfg := st.Config()
	d := deferredPool.Get().(*deferredAppend)
	p, err := st.prepareInto(d.buf[:0], rec, o, cfg, st.store.now())
	d.buf = p.payload
	if err != nil {
		d.put()
		return err
	}
	sh, _, err := st.route(p.hash)
	if err == nil {
		err = st.admit(ctx, sh, cfg, 1, p.size, false)
	}
	if err != nil {
		d.put()
		return err
	}
	d.sh, d.c = sh, c
	err = sh.lane.AppendDeferred(ctx, p.payload, d)
	if err == nil {
		return nil
	}
	d.put()
	if !errors.Is(err, wal.ErrSealed) {
		return walErr(sh, err)
	}
	// The shard closed for a reshard after we routed to it: the waiting
	// path routes again to its child once the new map is out. Waiting
	// here, on the caller's goroutine, keeps this key's later records
	// behind this one.
	a, err := st.append(ctx, rec, o)
	c.Appended(a, err)
	return nil
}

// deferredAppend is one queued record: its encoded frame body (pooled,
// since the log does not copy it) and whom to tell.
type deferredAppend struct {
	buf []byte
	sh  *Shard
	c   Completion
}

var deferredPool = sync.Pool{New: func() any { return new(deferredAppend) }}

// maxPooledRecord keeps one large record from pinning its buffer in the pool.
const maxPooledRecord = 16 << 10

func (d *deferredAppend) put() {
	d.sh, d.c = nil, nil
	if cap(d.buf) > maxPooledRecord {
		d.buf = nil
	}
	deferredPool.Put(d)
}

// Committed implements wal.Completion.
func (d *deferredAppend) Committed(index uint64, err error) {
	sh, c := d.sh, d.c
	d.put()
	if err != nil {
		c.Appended(Appended{}, walErr(sh, err))
		return
	}
	sh.stream.store.metrics.appended.Add(1)
	sh.appended.Add(1)
	c.Appended(Appended{ShardID: sh.ID(), Seq: index}, nil)
}
