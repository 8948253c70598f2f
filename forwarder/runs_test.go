package forwarder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// runSink stands in for the object-store sink's engine contract (kind
// s3): items are runs of one shard, each written as one object named
// after its first record. It fails the Puts fail says, and remembers the
// objects that went through.
type runSink struct {
	mu      sync.Mutex
	puts    int
	fail    func(n int) bool
	objects []runObject
	lim     limits
}

type runObject struct {
	shard       string
	first, last uint64
	n           int
}

func (s *runSink) limits() limits { return s.lim }
func (s *runSink) encode(_ string, r *shards.Record) ([]byte, error) {
	return r.Data, nil
}
func (s *runSink) classify(err error) failure {
	return failure{kind: transient, code: "Test", msg: err.Error()}
}
func (s *runSink) close() {}

var errPutFailed = errors.New("put failed")

func (s *runSink) send(_ context.Context, b *batch) (sendOutcome, error) {
	o := sendOutcome{res: make([]entryResult, len(b.items))}
	for i, it := range b.items {
		s.mu.Lock()
		s.puts++
		failed := s.fail != nil && s.fail(s.puts)
		s.mu.Unlock()
		if failed {
			o.res[i] = entryFailed
			continue
		}
		recs := make([]*shards.Record, len(it.entries))
		for j, e := range it.entries {
			recs[j] = e.rec
			if e.rec == nil || (j > 0 && e.seq != it.entries[j-1].seq+1) || e.lane.id != it.entries[0].lane.id {
				return o, fmt.Errorf("item is not a run of one shard: %d after %d", e.seq, it.entries[max(j-1, 0)].seq)
			}
		}
		s.mu.Lock()
		s.objects = append(s.objects, runObject{shard: it.entries[0].lane.id, first: recs[0].Seq, last: recs[len(recs)-1].Seq, n: len(recs)})
		s.mu.Unlock()
	}
	return o, nil
}

func (s *runSink) snapshot() []runObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]runObject(nil), s.objects...)
}

// Runs mode: objects are consecutive records of one shard, cut at the
// size hint (or the age hint for a quiet tail); a failed object is
// rewritten with the same first record, and after a restart every object
// starts where an earlier one started or ended: an object store that
// names objects after their first record never holds a record twice.
func TestRunsPerShard(t *testing.T) {
	lim := limits{maxItems: 4, maxRecords: 1 << 20, maxBatchBytes: 4000, maxItemBytes: 1000,
		multi: true, byShard: true, keepRecords: true, selfMetered: true, linger: 150 * time.Millisecond}
	src := newMemSource("shardId-000000000000", "shardId-000000000001")
	shs := []*memShard{src.shard("shardId-000000000000"), src.shard("shardId-000000000001")}
	ck := newMemCkpt()
	keys := []string{"a", "b", "c"}
	write := func(from, to int) {
		for n := from; n < to; n++ {
			for i, k := range keys {
				shs[i%2].append(shards.Record{Key: k, Data: fmt.Appendf(nil, "%s|%06d|%080d", k, n, 0)}) // 95 bytes
			}
		}
	}
	sink := &runSink{lim: lim, fail: func(n int) bool { return n == 2 || n == 5 || n == 9 }}
	open := func() *Forwarder {
		f, err := New(httpCfg("http://127.0.0.1:1/unused"), src, ck, testOpts(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		return f.withSink(sink)
	}
	write(0, 100)
	f := open()
	stop := start(t, f)
	waitFor(t, 10*time.Second, "the first records", func() bool { return f.Lag().Sent >= 150 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	write(100, 203) // a tail shorter than one object: goes after max_object_age
	f = open()
	stop = start(t, f)
	total := int64(203 * len(keys))
	waitFor(t, 10*time.Second, "every record", func() bool {
		got, _ := ck.Get("telemetry", "forwarder:backend")
		return got["shardId-000000000000"]+got["shardId-000000000001"] == uint64(total)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	objs := sink.snapshot()
	starts := map[string]map[uint64]bool{} // per shard: where objects start, and one past where they end
	covered := map[string]map[uint64]int{}
	full := 0
	for _, o := range objs {
		if starts[o.shard] == nil {
			starts[o.shard], covered[o.shard] = map[uint64]bool{1: true}, map[uint64]int{}
		}
		if !starts[o.shard][o.first] {
			t.Errorf("object %s %d..%d starts inside an earlier object", o.shard, o.first, o.last)
		}
		starts[o.shard][o.first], starts[o.shard][o.last+1] = true, true
		for s := o.first; s <= o.last; s++ {
			covered[o.shard][s]++
		}
		if o.n*95 > lim.maxItemBytes+95 {
			t.Errorf("object %d..%d of %d records is over the size hint", o.first, o.last, o.n)
		}
		if o.n >= 10 {
			full++
		}
	}
	n := 0
	for _, c := range covered {
		n += len(c)
	}
	if n != int(total) {
		t.Errorf("%d distinct records in objects, want %d", n, total)
	}
	if full < len(objs)/2 {
		t.Errorf("only %d of %d objects reached the size hint", full, len(objs))
	}
	t.Logf("%d objects (%d full), %d puts", len(objs), full, sink.puts)
}

// A self-metered upload waits for its bytes on the shared uplink chunk
// by chunk.
func TestMeteredUpload(t *testing.T) {
	up := NewUplink(UplinkConfig{MaxBytesPerSec: 128 << 10})
	m := newMeter(Config{Priority: 1}, up)
	defer m.close()
	began := time.Now()
	if err := m.waitBytes(context.Background(), 384<<10); err != nil {
		t.Fatal(err)
	}
	// 384 KiB at 128 KiB/s with a second's burst: at least 2s.
	if d := time.Since(began); d < 1800*time.Millisecond || d > 10*time.Second {
		t.Errorf("upload took %v, want about 2s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := m.waitBytes(ctx, 1<<20); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past its deadline = %v", err)
	}
}
