package forwarder

import (
	"sync/atomic"

	"github.com/weir-gateway/weir/shards"
)

// lane is the forwarder's view of one local shard: where reading goes on
// and which records read are acknowledged. Acknowledgements arrive out of
// order (other keys go on while one is throttled), so the lane keeps one
// bit per sequence number between its low watermark and its read
// position; the records themselves live only in the planner until they
// are acknowledged.
//
// The watermark is what the checkpoint stores: every record at or below
// it is acknowledged upstream (or was lost to retention or too large to
// send).
type lane struct {
	id   string
	info shards.ShardInfo
	sh   ShardReader // nil until opened

	next     uint64   // next sequence number to read
	base     uint64   // first sequence number not acknowledged; == next when none is pending
	bits     []uint64 // acknowledged flags: bit i of word w is seq off+64w+i
	off      uint64   // multiple of 64, <= base
	maxAcked uint64   // highest sequence number acknowledged

	unacked      int // records read and not acknowledged
	unackedBytes int // their payload bytes

	committed uint64 // last watermark stored
	stored    bool   // a checkpoint exists (committed is meaningful)

	// Reading state, touched only by the engine loop, except fired.
	caughtUp bool        // the last read found nothing; wait for Changed
	watching bool        // a watcher goroutine waits on the shard's Changed
	fired    atomic.Bool // set by the watcher when the shard changed
	retryAt  int64       // unix ns: don't read before (after a read error)
}

// start positions a fresh lane at seq.
func (l *lane) start(seq uint64) {
	l.next, l.base, l.off, l.bits = seq, seq, seq&^63, l.bits[:0]
}

// read notes a record read and handed to the planner.
func (l *lane) read(e *entry) {
	l.skipTo(e.seq)
	l.unacked++
	l.unackedBytes += len(e.payload)
	l.next = e.seq + 1
}

// skipTo marks the records from the read position up to to (exclusive)
// done without sending them (lost to retention, too large for Kinesis, or
// a gap in the numbering), and moves reading there.
func (l *lane) skipTo(to uint64) {
	if to <= l.next {
		return
	}
	if l.base == l.next {
		l.start(to) // nothing pending: just jump
		return
	}
	for s := l.next; s < to; s++ {
		l.mark(s)
	}
	l.next = to
	l.advance()
}

// ack notes that the upstream acknowledged e.
func (l *lane) ack(e *entry) {
	l.unacked--
	l.unackedBytes -= len(e.payload)
	l.maxAcked = max(l.maxAcked, e.seq)
	l.mark(e.seq)
	l.advance()
}

func (l *lane) mark(seq uint64) {
	i := seq - l.off
	for uint64(len(l.bits)) <= i/64 {
		l.bits = append(l.bits, 0)
	}
	l.bits[i/64] |= 1 << (i % 64)
}

func (l *lane) isMarked(seq uint64) bool {
	i := seq - l.off
	return i/64 < uint64(len(l.bits)) && l.bits[i/64]&(1<<(i%64)) != 0
}

// advance moves base past the acknowledged prefix and drops whole words
// below it.
func (l *lane) advance() {
	for l.base < l.next && l.isMarked(l.base) {
		l.base++
	}
	if w := (l.base - l.off) / 64; w > 0 {
		w = min(w, uint64(len(l.bits)))
		n := copy(l.bits, l.bits[w:])
		l.bits = l.bits[:n]
		l.off += 64 * w
	}
}

// span is how far reading is ahead of the watermark, acknowledged records
// included; it bounds what a crash could make the forwarder resend.
func (l *lane) span() uint64 { return l.next - l.base }

// watermark is the low watermark: one below the oldest unacknowledged
// record read, or one below the read position when all are acknowledged.
func (l *lane) watermark() uint64 { return l.base - 1 }

// readAll reports whether every record the shard will ever hold has been
// read: it is closed and reading has passed its end.
func (l *lane) readAll() bool { return l.info.Closed && l.next > l.info.EndingSeq() }

// done: closed, read to the end, and everything acknowledged. Children
// may start.
func (l *lane) done() bool { return l.readAll() && l.base == l.next }
