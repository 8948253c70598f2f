package forwarder

import (
	"container/heap"
	"time"

	"github.com/weir-gateway/weir/internal/backoff"
	"github.com/weir-gateway/weir/shards"
)

// Kinesis PutRecords limits.
const (
	maxBatchRecords = 500
	maxBatchBytes   = 5 << 20 // data + partition keys of the whole request
	maxRecordBytes  = 1 << 20 // data + partition key of one entry
)

// limits are the planner's batch limits; tests shrink them.
type limits struct {
	maxItems      int
	maxBatchBytes int
	maxItemBytes  int // per item; one record larger than this is never sent
	aggregate     bool
	// multi lets an item hold several consecutive records of its key, sent
	// in order in one request that succeeds or fails whole (http, mqtt);
	// the sink encodes the batch from the entries, so item.data is unset.
	multi bool
	// maxRecords bounds the records of a batch with multi (0: maxItems).
	maxRecords int
	// byShard makes each local shard one "key" (runs): an item is then a
	// run of consecutive records of one shard, one run per shard in flight
	// and a failed run resent as it was, so the watermark moves a whole
	// run at a time and a run retried after a restart starts at the same
	// record (an object store names the object after it). With multi.
	byShard bool
	// keepRecords keeps each entry's local record for the sink (entry.rec).
	keepRecords bool
	// linger, when set, replaces the config's linger (s3: max_object_age).
	linger time.Duration
	// timeout, when set, replaces request_timeout as the deadline of one
	// send (s3: a batch of objects at the uplink's pace).
	timeout time.Duration
	// selfMetered: the sink meters its own uploads against the per-sink
	// cap and the shared uplink (a meter), chunk by chunk, because its
	// items are too large to take from the token buckets whole.
	selfMetered bool
}

func defaultLimits(aggregate bool) limits {
	return limits{maxItems: maxBatchRecords, maxBatchBytes: maxBatchBytes, maxItemBytes: maxRecordBytes, aggregate: aggregate}
}

// entry is one local record between being read and being acknowledged.
type entry struct {
	lane    *lane
	seq     uint64
	key     string
	arrival int64          // unix ms
	payload []byte         // what goes upstream for it (after the envelope)
	rec     *shards.Record // with limits.keepRecords
}

func (e *entry) size() int { return len(e.payload) + len(e.key) }

// item is one PutRecords entry: one record, or with aggregation several
// consecutive records of one key. It succeeds or fails whole and is
// resent as it is.
type item struct {
	ks        *keyState
	entries   []*entry
	data      []byte
	bytes     int       // size: data (or the entries' payloads) and the key
	sends     int       // requests it was part of
	fails     int       // entry-level failures (InternalFailure), for its own backoff
	notBefore time.Time // earliest resend after an entry-level failure
}

func (it *item) size() int { return it.bytes }

// batch is one PutRecords request.
type batch struct {
	items []*item
	bytes int
}

func (b *batch) records() int {
	n := 0
	for _, it := range b.items {
		n += len(it.entries)
	}
	return n
}

// keyState queues the unacknowledged records of one partition key. The
// per-key rule lives here: while a key has an item in flight (busy) or a
// failed item waiting (retry), nothing newer of that key is sent, so a
// batch never holds a key twice and neither do concurrent requests.
type keyState struct {
	key    string
	q      []*entry // read, not yet in an item, in sequence order
	qBytes int      // sizes of q
	retry  *item    // failed item; goes before q
	busy   bool     // an item is in flight
	queued bool     // in ready or delayed
	gid    string   // pacing group, valid for gidVer
	gidVer int
}

func (ks *keyState) idle() bool { return !ks.busy && ks.retry == nil && len(ks.q) == 0 }

// head is the key's oldest unacknowledged record not in flight.
func (ks *keyState) head() *entry {
	if ks.retry != nil {
		return ks.retry.entries[0]
	}
	return ks.q[0]
}

func (ks *keyState) headArrival() int64 { return ks.head().arrival }

// planner decides what goes into the next PutRecords request. It does no
// I/O and reads no clock: the engine passes now in, tests drive it
// directly.
type planner struct {
	lim     limits
	keys    map[string]*keyState
	ready   []*keyState // FIFO of keys that may send now
	rhead   int
	delayed delayQueue // keys waiting for a backoff to pass
	pace    *pacer
	retryBo backoff.Exp // for entries that failed with InternalFailure
	// eligible, when set, keeps keys whose next record it rejects out of
	// the queues (the shutdown drain sends only what lets the watermarks
	// catch up). Once eligible, a key must stay eligible.
	eligible func(*keyState) bool
	// linger is what due was last asked about; build cuts runs by it.
	linger time.Duration
}

func newPlanner(lim limits, pace *pacer, retryBo backoff.Exp) *planner {
	return &planner{lim: lim, keys: map[string]*keyState{}, pace: pace, retryBo: retryBo}
}

// push queues a record read from a local shard, in shard order.
func (p *planner) push(e *entry, now time.Time) {
	k := e.key
	if p.lim.byShard {
		k = e.lane.id
	}
	ks := p.keys[k]
	if ks == nil {
		ks = &keyState{key: k, gidVer: -1}
		p.keys[k] = ks
	}
	ks.q = append(ks.q, e)
	ks.qBytes += e.size()
	p.wake(ks, now)
}

func (p *planner) group(ks *keyState) string {
	if ks.gidVer != p.pace.version {
		ks.gid, ks.gidVer = p.pace.groupOf(ks.key), p.pace.version
	}
	return ks.gid
}

// notBefore is when the key may send next.
func (p *planner) notBefore(ks *keyState) time.Time {
	var t time.Time
	if ks.retry != nil {
		t = ks.retry.notBefore
	}
	if len(p.pace.groups) > 0 {
		if g := p.pace.notBefore(p.group(ks)); g.After(t) {
			t = g
		}
	}
	return t
}

// wake puts a key that has something to send into ready (or delayed, if
// it is backing off), and forgets keys with nothing left.
func (p *planner) wake(ks *keyState, now time.Time) {
	if ks.busy || ks.queued {
		return
	}
	if ks.idle() {
		if p.keys[ks.key] == ks {
			delete(p.keys, ks.key)
		}
		return
	}
	if p.eligible != nil && !p.eligible(ks) {
		return
	}
	ks.queued = true
	if nb := p.notBefore(ks); nb.After(now) {
		heap.Push(&p.delayed, delayed{at: nb, ks: ks})
		return
	}
	p.ready = append(p.ready, ks)
}

// rewake re-queues every key after eligible changed: those it rejects
// leave the queues, those it now accepts join them.
func (p *planner) rewake(now time.Time) {
	for _, ks := range p.ready[p.rhead:] {
		ks.queued = false
	}
	for _, d := range p.delayed {
		d.ks.queued = false
	}
	p.ready, p.rhead, p.delayed = p.ready[:0], 0, p.delayed[:0]
	for _, ks := range p.keys {
		p.wake(ks, now)
	}
}

// promote moves keys whose backoff has passed into ready.
func (p *planner) promote(now time.Time) {
	for len(p.delayed) > 0 && !p.delayed[0].at.After(now) {
		d := heap.Pop(&p.delayed).(delayed)
		d.ks.queued = false
		p.wake(d.ks, now)
	}
}

func (p *planner) readyLen() int { return len(p.ready) - p.rhead }

func (p *planner) popReady() *keyState {
	if p.rhead == len(p.ready) {
		return nil
	}
	ks := p.ready[p.rhead]
	p.ready[p.rhead] = nil
	p.rhead++
	if p.rhead == len(p.ready) {
		p.ready, p.rhead = p.ready[:0], 0
	}
	return ks
}

func (p *planner) unpop(ks *keyState) {
	if p.rhead > 0 {
		p.rhead--
		p.ready[p.rhead] = ks
		return
	}
	p.ready = append([]*keyState{ks}, p.ready...)
}

// due says whether a batch should go now: when a full batch is ready, or
// when the oldest ready record has waited linger since it arrived (so
// backlog and retries go at once, and fresh records wait a little for
// company). Otherwise it returns when to look again (zero: nothing to do).
func (p *planner) due(now time.Time, linger time.Duration) (bool, time.Time) {
	p.promote(now)
	n := p.readyLen()
	if n == 0 {
		if len(p.delayed) > 0 {
			return false, p.delayed[0].at
		}
		return false, time.Time{}
	}
	p.linger = linger
	if p.lim.byShard {
		// Each run is cut by its own size or age only: a run sent early
		// because other shards are ready makes a small object.
		var next time.Time
		for _, ks := range p.ready[p.rhead:] {
			if p.runDue(ks, now) {
				return true, time.Time{}
			}
			if at := time.UnixMilli(ks.headArrival()).Add(linger); next.IsZero() || at.Before(next) {
				next = at
			}
		}
		return false, next
	}
	if n >= p.lim.maxItems {
		return true, time.Time{}
	}
	oldest := p.ready[p.rhead].headArrival()
	for _, ks := range p.ready[p.rhead:] {
		oldest = min(oldest, ks.headArrival())
		if p.lim.multi && ks.qBytes >= p.lim.maxItemBytes {
			return true, time.Time{} // a whole item (an object's worth) is waiting
		}
	}
	deadline := time.UnixMilli(oldest).Add(linger)
	if !now.Before(deadline) {
		return true, time.Time{}
	}
	return false, deadline
}

// runDue (runs only) reports whether a shard's run is to be cut now: it
// is being resent, an object's worth is waiting, or its first record has
// waited the linger (max_object_age) that due was last asked about.
func (p *planner) runDue(ks *keyState, now time.Time) bool {
	return ks.retry != nil || ks.qBytes >= p.lim.maxItemBytes ||
		!now.Before(time.UnixMilli(ks.headArrival()).Add(p.linger))
}

// build takes the next batch: at most one item per key, within the
// request limits and about maxBytes (the rate limiter's budget; at least
// one item always fits). Items go in ready order; a failed item is resent
// before anything newer of its key.
func (p *planner) build(now time.Time, maxBytes int) *batch {
	p.promote(now)
	maxBytes = min(maxBytes, p.lim.maxBatchBytes)
	b := &batch{}
	maxRecords := p.lim.maxRecords
	if maxRecords <= 0 {
		maxRecords = p.lim.maxItems
	}
	recs := 0
	var young []*keyState // runs not due yet: back to ready afterwards
	defer func() {
		for _, ks := range young {
			p.wake(ks, now)
		}
	}()
	for len(b.items) < p.lim.maxItems && recs < maxRecords {
		ks := p.popReady()
		if ks == nil {
			break
		}
		ks.queued = false
		if nb := p.notBefore(ks); nb.After(now) {
			p.wake(ks, now)
			continue
		}
		if p.lim.byShard && !p.runDue(ks, now) {
			young = append(young, ks)
			continue
		}
		room := maxBytes - b.bytes
		// The first item always goes, however small the budget: with
		// multi it is one record plus what fits, otherwise up to an item.
		first := len(b.items) == 0
		if first && !p.lim.multi {
			room = max(room, p.lim.maxItemBytes)
		}
		it := ks.retry
		if it != nil && it.size() > room && !first {
			it = nil
		} else if it == nil {
			it = p.makeItem(ks, room, first, maxRecords-recs)
		}
		if it == nil {
			ks.queued = true
			p.unpop(ks)
			break
		}
		ks.retry = nil
		ks.busy = true
		it.sends++
		b.items = append(b.items, it)
		b.bytes += it.size()
		recs += len(it.entries)
	}
	if len(b.items) == 0 {
		return nil
	}
	return b
}

// makeItem takes the key's next record, or with aggregation as many of its
// next records as fit in one aggregate of at most room bytes (key
// included), or with multi as many as fit in room and maxRecs (at least
// one when force). It returns nil if not even one record fits.
func (p *planner) makeItem(ks *keyState, room int, force bool, maxRecs int) *item {
	if !p.lim.multi {
		room = min(room, p.lim.maxItemBytes)
	}
	first := ks.q[0]
	if first.size() > room && !(force && p.lim.multi) {
		return nil
	}
	n := 1
	if p.lim.multi {
		room = min(room, p.lim.maxItemBytes)
		size := first.size()
		for n < len(ks.q) && n < maxRecs && size+ks.q[n].size() <= room {
			size += ks.q[n].size()
			n++
		}
		it := &item{ks: ks, entries: ks.q[:n:n], bytes: size}
		ks.q = ks.q[n:]
		ks.qBytes -= size
		if len(ks.q) == 0 {
			ks.q, ks.qBytes = nil, 0
		}
		return it
	}
	if p.lim.aggregate {
		size := len(ks.key) + kplOverhead + 1 + varintLen(uint64(len(ks.key))) + len(ks.key)
		fit := 0
		for _, e := range ks.q {
			c := kplAddCost(len(e.payload))
			if size+c > room {
				break
			}
			size += c
			fit++
		}
		n = max(fit, 1)
	}
	it := &item{ks: ks, entries: ks.q[:n:n]}
	ks.q = ks.q[n:]
	for _, e := range it.entries {
		ks.qBytes -= e.size()
	}
	if len(ks.q) == 0 {
		ks.q, ks.qBytes = nil, 0 // let the backing array go
	}
	if n == 1 {
		// A lone record goes as itself, as the KPL does: de-aggregators
		// pass plain records through.
		it.data = first.payload
	} else {
		datas := make([][]byte, n)
		for i, e := range it.entries {
			datas[i] = e.payload
		}
		it.data = EncodeAggregate(ks.key, datas)
	}
	it.bytes = len(it.data) + len(ks.key)
	return it
}

// Entry outcomes of a PutRecords response, by ErrorCode.
type entryResult int

const (
	entryOK        entryResult = iota
	entryThrottled             // ProvisionedThroughputExceeded, KMS throttling: slow the upstream shard
	entryFailed                // InternalFailure and the like: resend the item after its own backoff
)

// completion counts what a response did.
type completion struct {
	acked     []*entry // entries acknowledged now
	failed    int      // records to be resent
	throttled int      // of which throttled
}

// complete applies a PutRecords response: res[i] is the outcome of
// b.items[i]. Only the failed items are resent, each before anything newer
// of its key.
func (p *planner) complete(b *batch, res []entryResult, now time.Time) completion {
	var c completion
	// Per pacing group: did any entry get through, was any throttled?
	type tally struct{ ok, throttled bool }
	var groups map[string]*tally
	if len(p.pace.groups) > 0 || hasThrottle(res) {
		groups = map[string]*tally{}
		for i, it := range b.items {
			g := groups[p.group(it.ks)]
			if g == nil {
				g = &tally{}
				groups[p.group(it.ks)] = g
			}
			g.ok = g.ok || res[i] == entryOK
			g.throttled = g.throttled || res[i] == entryThrottled
		}
		for gid, g := range groups {
			switch {
			case g.throttled && !g.ok:
				p.pace.throttled(gid, now) // the shard took nothing: back off further
			case g.throttled:
				p.pace.nudge(gid, now) // at capacity: pause briefly, don't escalate
			case g.ok:
				p.pace.ok(gid)
			}
		}
	}
	for i, it := range b.items {
		ks := it.ks
		ks.busy = false
		switch res[i] {
		case entryOK:
			c.acked = append(c.acked, it.entries...)
		case entryThrottled:
			ks.retry = it
			c.failed += len(it.entries)
			c.throttled += len(it.entries)
		default:
			it.notBefore = now.Add(p.retryBo.Delay(it.fails))
			it.fails++
			ks.retry = it
			c.failed += len(it.entries)
		}
		p.wake(ks, now)
	}
	return c
}

func hasThrottle(res []entryResult) bool {
	for _, r := range res {
		if r == entryThrottled {
			return true
		}
	}
	return false
}

// failAll returns every item of a request that failed as a whole; the
// engine's request-level backoff decides when anything is sent again.
func (p *planner) failAll(b *batch, now time.Time) {
	for _, it := range b.items {
		it.ks.busy = false
		it.ks.retry = it
		p.wake(it.ks, now)
	}
}

// delayQueue is a min-heap of keys by the time their backoff ends.
type delayed struct {
	at time.Time
	ks *keyState
}

type delayQueue []delayed

func (q delayQueue) Len() int           { return len(q) }
func (q delayQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q delayQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *delayQueue) Push(x any)        { *q = append(*q, x.(delayed)) }
func (q *delayQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	old[len(old)-1] = delayed{}
	*q = old[:len(old)-1]
	return d
}
