package forwarder

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/backoff"
	"github.com/weir-gateway/weir/shards"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testPlanner(lim limits) *planner {
	bo := backoff.Exp{Base: 100 * time.Millisecond, Cap: time.Second, Rand: rand.New(rand.NewPCG(1, 2))}
	return newPlanner(lim, newPacer(bo), bo)
}

// pushN queues perKey records for each of keys on one lane, round robin,
// as a shard would hold them; it returns the lane.
func pushN(p *planner, keys []string, perKey, size int, now time.Time) *lane {
	l := &lane{id: "shardId-000000000000"}
	l.start(1)
	seq := uint64(1)
	for n := 0; n < perKey; n++ {
		for _, k := range keys {
			e := &entry{lane: l, seq: seq, key: k, arrival: now.UnixMilli(), payload: []byte(fmt.Sprintf("%s|%d|%s", k, n, strings.Repeat("x", size)))}
			l.read(e)
			p.push(e, now)
			seq++
		}
	}
	return l
}

func keysN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("dev-%03d", i)
	}
	return out
}

func checkBatch(t *testing.T, b *batch, lim limits) {
	t.Helper()
	if len(b.items) > lim.maxItems {
		t.Fatalf("%d items > %d", len(b.items), lim.maxItems)
	}
	keys := map[string]bool{}
	size := 0
	for _, it := range b.items {
		if keys[it.ks.key] {
			t.Fatalf("key %s twice in one batch", it.ks.key)
		}
		keys[it.ks.key] = true
		if it.size() > lim.maxItemBytes {
			t.Fatalf("item of %d bytes > %d", it.size(), lim.maxItemBytes)
		}
		size += it.size()
	}
	if size != b.bytes || size > lim.maxBatchBytes {
		t.Fatalf("batch bytes %d (counted %d), limit %d", size, b.bytes, lim.maxBatchBytes)
	}
}

func TestPlannerNoDuplicateKeysPerBatchOrInFlight(t *testing.T) {
	lim := defaultLimits(false)
	p := testPlanner(lim)
	pushN(p, keysN(700), 3, 10, t0)
	inFlight := map[string]bool{}
	var batches []*batch
	for {
		b := p.build(t0, maxBatchBytes)
		if b == nil {
			break
		}
		checkBatch(t, b, lim)
		for _, it := range b.items {
			if inFlight[it.ks.key] {
				t.Fatalf("key %s in two requests in flight", it.ks.key)
			}
			inFlight[it.ks.key] = true
		}
		batches = append(batches, b)
	}
	// 700 keys: one full batch of 500, then the other 200; the rest of
	// every key waits for its first record.
	if len(batches) != 2 || len(batches[0].items) != 500 || len(batches[1].items) != 200 {
		t.Fatalf("got %d batches, want 500+200 items", len(batches))
	}
	p.complete(batches[1], make([]entryResult, 200), t0)
	b := p.build(t0, maxBatchBytes)
	if b == nil || len(b.items) != 200 {
		t.Fatalf("after completing 200 keys, want their 200 next records, got %v", b)
	}
	for _, it := range b.items {
		if it.entries[0].seq <= 700 || inFlight[it.ks.key] && it.entries[0].seq < 700 {
			t.Fatalf("unexpected record %d of %s", it.entries[0].seq, it.ks.key)
		}
	}
}

func TestPlannerSizeLimits(t *testing.T) {
	t.Run("batch_bytes", func(t *testing.T) {
		lim := defaultLimits(false)
		p := testPlanner(lim)
		pushN(p, keysN(40), 1, 300_000, t0) // 40 × ~300 KB = 12 MB
		total := 0
		for b := p.build(t0, maxBatchBytes); b != nil; b = p.build(t0, maxBatchBytes) {
			checkBatch(t, b, lim)
			if len(b.items) != 17 && total+len(b.items) != 40 {
				t.Fatalf("batch of %d items of 300 KB, want 17 (5 MiB)", len(b.items))
			}
			total += len(b.items)
		}
		if total != 40 {
			t.Fatalf("sent %d of 40", total)
		}
	})
	t.Run("byte_budget_takes_at_least_one", func(t *testing.T) {
		p := testPlanner(defaultLimits(false))
		pushN(p, keysN(5), 1, 1000, t0)
		b := p.build(t0, 10)
		if b == nil || len(b.items) != 1 {
			t.Fatalf("tiny budget: want one item, got %v", b)
		}
		if b := p.build(t0, 2500); b == nil || len(b.items) != 2 {
			t.Fatalf("2500-byte budget: want 2 items")
		}
	})
	t.Run("aggregate_under_1MiB", func(t *testing.T) {
		lim := defaultLimits(true)
		p := testPlanner(lim)
		pushN(p, []string{"hot"}, 30_000, 100, t0) // ~3.3 MB of one key
		got := 0
		for {
			b := p.build(t0, maxBatchBytes)
			if b == nil {
				break
			}
			checkBatch(t, b, lim)
			if len(b.items) != 1 {
				t.Fatalf("one key: want one item per batch, got %d", len(b.items))
			}
			it := b.items[0]
			if it.size() > maxRecordBytes {
				t.Fatalf("aggregate of %d bytes", it.size())
			}
			recs, err := DecodeAggregate(it.data, "hot")
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(it.entries) {
				t.Fatalf("aggregate holds %d, item %d", len(recs), len(it.entries))
			}
			for i, r := range recs {
				if string(r.Data) != string(it.entries[i].payload) || r.PartitionKey != "hot" {
					t.Fatalf("aggregate record %d differs", i)
				}
			}
			if rest := len(p.keys["hot"].q); rest > 0 && it.size() < maxRecordBytes-200 {
				t.Fatalf("aggregate of %d bytes not filled while %d records wait", it.size(), rest)
			}
			got += len(it.entries)
			p.complete(b, []entryResult{entryOK}, t0)
		}
		if got != 30_000 {
			t.Fatalf("aggregated %d of 30000", got)
		}
	})
}

func TestPlannerResendsOnlyFailedEntries(t *testing.T) {
	p := testPlanner(defaultLimits(false))
	l := pushN(p, keysN(10), 2, 10, t0) // seq 1..10 first round, 11..20 second
	b := p.build(t0, maxBatchBytes)
	if len(b.items) != 10 {
		t.Fatalf("first batch %d items", len(b.items))
	}
	res := make([]entryResult, 10)
	res[3], res[7] = entryThrottled, entryFailed
	c := p.complete(b, res, t0)
	if len(c.acked) != 8 || c.failed != 2 || c.throttled != 1 {
		t.Fatalf("completion %+v", c)
	}
	later := t0.Add(2 * time.Second) // past any backoff
	b2 := p.build(later, maxBatchBytes)
	bySeq := map[uint64]*item{}
	for _, it := range b2.items {
		bySeq[it.entries[0].seq] = it
	}
	if len(b2.items) != 10 {
		t.Fatalf("second batch has %d items, want 8 new + 2 resends", len(b2.items))
	}
	for _, seq := range []uint64{4, 8} {
		it := bySeq[seq]
		if it == nil || it.sends != 2 {
			t.Fatalf("record %d not resent as its item (%v)", seq, it)
		}
	}
	for _, seq := range []uint64{14, 18} {
		if bySeq[seq] != nil {
			t.Fatalf("record %d sent while its key's older record is being resent", seq)
		}
	}
	if w := l.watermark(); w != 0 {
		t.Fatalf("watermark %d before anything acked is advanced", w)
	}
}

// TestPlannerRandomOutcomes drives the planner like the engine does, with
// several requests in flight completing out of order and random partial
// and whole failures, and checks the per-key rule, the order of first
// acknowledgements and the watermark.
func TestPlannerRandomOutcomes(t *testing.T) {
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprint("aggregate=", aggregate), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(7, 11))
			lim := defaultLimits(aggregate)
			lim.maxItems = 50
			p := testPlanner(lim)
			keys := keysN(30)
			l := pushN(p, keys, 40, 5, t0)
			total := len(keys) * 40
			now := t0
			var inflight []*batch
			busy := map[string]bool{}
			ackedSeq := map[uint64]bool{}
			lastAck := map[string]uint64{}
			for steps := 0; len(ackedSeq) < total; steps++ {
				if steps > 100_000 {
					t.Fatalf("no progress: %d of %d acked", len(ackedSeq), total)
				}
				now = now.Add(time.Duration(rnd.IntN(50)) * time.Millisecond)
				if len(inflight) < 4 {
					if b := p.build(now, maxBatchBytes); b != nil {
						checkBatch(t, b, lim)
						for _, it := range b.items {
							if busy[it.ks.key] {
								t.Fatalf("key %s sent while in flight", it.ks.key)
							}
							busy[it.ks.key] = true
						}
						inflight = append(inflight, b)
						continue
					}
				}
				if len(inflight) == 0 {
					continue
				}
				i := rnd.IntN(len(inflight)) // complete out of order
				b := inflight[i]
				inflight = append(inflight[:i], inflight[i+1:]...)
				for _, it := range b.items {
					delete(busy, it.ks.key)
				}
				if rnd.IntN(10) == 0 {
					p.failAll(b, now)
					continue
				}
				res := make([]entryResult, len(b.items))
				for j := range res {
					res[j] = entryResult(max(0, rnd.IntN(6)-3)) // half fail
				}
				c := p.complete(b, res, now)
				for _, e := range c.acked {
					if ackedSeq[e.seq] {
						t.Fatalf("record %d acknowledged twice", e.seq)
					}
					if e.seq <= lastAck[e.key] {
						t.Fatalf("key %s: record %d acknowledged after %d", e.key, e.seq, lastAck[e.key])
					}
					lastAck[e.key] = e.seq
					ackedSeq[e.seq] = true
					e.lane.ack(e)
				}
				// The watermark covers exactly the acknowledged prefix.
				w := l.watermark()
				for s := uint64(1); s <= w; s++ {
					if !ackedSeq[s] {
						t.Fatalf("watermark %d covers unacknowledged %d", w, s)
					}
				}
				if w+1 <= uint64(total) && ackedSeq[w+1] {
					t.Fatalf("watermark %d stops before acknowledged %d", w, w+1)
				}
			}
			if w := l.watermark(); w != uint64(total) {
				t.Fatalf("final watermark %d, want %d", w, total)
			}
			if len(p.keys) != 0 {
				t.Fatalf("%d keys left in the planner", len(p.keys))
			}
		})
	}
}

func TestLaneWatermarkOutOfOrder(t *testing.T) {
	l := &lane{}
	l.start(1)
	var es []*entry
	for s := uint64(1); s <= 200; s++ {
		e := &entry{lane: l, seq: s, payload: []byte("x")}
		l.read(e)
		es = append(es, e)
	}
	ack := func(from, to int) {
		for s := from; s <= to; s++ {
			l.ack(es[s-1])
		}
	}
	if l.watermark() != 0 || l.span() != 200 || l.unacked != 200 {
		t.Fatalf("start: watermark %d span %d unacked %d", l.watermark(), l.span(), l.unacked)
	}
	ack(5, 200)
	if l.watermark() != 0 || l.maxAcked != 200 {
		t.Fatalf("after 5..200: %d, want 0", l.watermark())
	}
	ack(1, 3)
	if l.watermark() != 3 {
		t.Fatalf("after 1..3: %d, want 3", l.watermark())
	}
	ack(4, 4)
	if l.watermark() != 200 || l.span() != 0 || l.unacked != 0 || l.unackedBytes != 0 || len(l.bits) > 1 {
		t.Fatalf("after all: watermark %d span %d unacked %d bits %d", l.watermark(), l.span(), l.unacked, len(l.bits))
	}
	// A record skipped as lost does not hold the watermark back.
	e201 := &entry{lane: l, seq: 201, payload: []byte("x")}
	l.read(e201)
	l.skipTo(203) // 202 lost
	e203 := &entry{lane: l, seq: 203, payload: []byte("x")}
	l.read(e203)
	l.ack(e203)
	if l.watermark() != 200 {
		t.Fatalf("with 201 pending: %d, want 200", l.watermark())
	}
	l.ack(e201)
	if l.watermark() != 203 {
		t.Fatalf("after 201: %d, want 203", l.watermark())
	}
	// Trimmed with nothing pending: jump.
	l.skipTo(1000)
	if l.watermark() != 999 || l.next != 1000 {
		t.Fatalf("after trim jump: watermark %d next %d", l.watermark(), l.next)
	}
}

func TestPlannerLinger(t *testing.T) {
	linger := 50 * time.Millisecond
	p := testPlanner(defaultLimits(false))
	if ok, at := p.due(t0, linger); ok || !at.IsZero() {
		t.Fatalf("empty planner due=%v at=%v", ok, at)
	}
	pushN(p, keysN(3), 1, 1, t0)
	if ok, at := p.due(t0.Add(10*time.Millisecond), linger); ok || !at.Equal(t0.Add(linger)) {
		t.Fatalf("fresh records: due=%v at=%v, want wait until %v", ok, at, t0.Add(linger))
	}
	if ok, _ := p.due(t0.Add(linger), linger); !ok {
		t.Fatal("records older than linger are not due")
	}
	q := testPlanner(defaultLimits(false))
	pushN(q, keysN(500), 1, 1, t0)
	if ok, _ := q.due(t0, linger); !ok {
		t.Fatal("a full batch is not due at once")
	}
}

func TestPacerPacesOnlyTheThrottledShard(t *testing.T) {
	p := testPlanner(defaultLimits(false))
	mid := shards.EvenRanges(2)
	p.pace.setShards([]upShard{{"up-0", mid[0][0], mid[0][1]}, {"up-1", mid[1][0], mid[1][1]}})
	keys := keysN(40)
	pushN(p, keys, 2, 1, t0)
	b := p.build(t0, maxBatchBytes)
	res := make([]entryResult, len(b.items))
	hot := map[string]bool{}
	for i, it := range b.items {
		if p.pace.groupOf(it.ks.key) == "shard/up-0" {
			res[i] = entryThrottled
			hot[it.ks.key] = true
		}
	}
	if len(hot) == 0 || len(hot) == len(keys) {
		t.Fatalf("keys not spread over two shards: %d hot", len(hot))
	}
	p.complete(b, res, t0)
	// Right away only the cold shard's keys may go, even hot keys that
	// were not themselves throttled would wait; here every hot key was.
	nb := p.pace.notBefore("shard/up-0")
	b2 := p.build(t0, maxBatchBytes)
	for _, it := range b2.items {
		if hot[it.ks.key] && nb.After(t0) {
			t.Fatalf("hot key %s sent during its shard's backoff", it.ks.key)
		}
	}
	if len(b2.items) != len(keys)-len(hot) && nb.After(t0) {
		t.Fatalf("cold shard sent %d keys, want %d", len(b2.items), len(keys)-len(hot))
	}
	// After the backoff the hot keys' failed records go first.
	b3 := p.build(nb.Add(time.Millisecond), maxBatchBytes)
	if b3 == nil {
		t.Fatal("hot keys never resent")
	}
	for _, it := range b3.items {
		if hot[it.ks.key] && it.sends != 2 {
			t.Fatalf("hot key %s: newer record before its throttled one", it.ks.key)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(1000, t0)
	if b.wait(t0) != 0 {
		t.Fatal("full bucket makes us wait")
	}
	b.take(3000, t0) // into debt by 2000 bytes = 2s
	if w := b.wait(t0); w < 1900*time.Millisecond || w > 2100*time.Millisecond {
		t.Fatalf("wait %v, want 2s", w)
	}
	if w := b.wait(t0.Add(2 * time.Second)); w != 0 {
		t.Fatalf("after 2s still waits %v", w)
	}
	unlimited := newTokenBucket(0, t0)
	unlimited.take(1<<30, t0)
	if unlimited.wait(t0) != 0 {
		t.Fatal("unlimited bucket waits")
	}
}
