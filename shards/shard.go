package shards

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-gateway/weir/wal"
)

// ShardInfo describes one shard of a stream as Kinesis does.
type ShardInfo struct {
	ID               string
	ParentID         string
	AdjacentParentID string
	StartHash        HashKey // inclusive
	EndHash          HashKey // inclusive
	StartSeq         uint64  // first sequence number this shard can hold
	EndSeq           uint64  // last sequence number once closed; 0 while open
	Closed           bool
	ClosedAt         time.Time
	// V1LastSeq is the last index the shard had issued when its data
	// directory moved from sequence number format v1 to v2: legacy numbers
	// up to it are still accepted (ParseSeq). 0 for shards made under v2.
	V1LastSeq uint64
	// LegacyLast is the last index of the shard's own log when its stream
	// moved to one log for all shards (stream.json version 3, migrate.go):
	// records up to it are read from that log. 0: the shard has none.
	LegacyLast uint64
}

// EndingSeq is the index a closed shard reports as its
// EndingSequenceNumber: its last record, but never below its first
// possible one, so an empty closed shard does not end before it starts.
func (i ShardInfo) EndingSeq() uint64 { return max(i.EndSeq, i.StartSeq) }

// Contains reports whether the hash key falls in the shard's range.
func (i ShardInfo) Contains(h HashKey) bool {
	return h.Cmp(i.StartHash) >= 0 && h.Cmp(i.EndHash) <= 0
}

// Shard is one lane of its stream's log (wal/FORMAT.md, "Lanes"): the
// shards of a stream share one committer, so one fdatasync commits the
// records of all of them. Sequence numbers are the log's indexes, so a
// shard's are increasing with gaps (the other shards' records). A shard
// of a stream written before lanes also has its own log of that time,
// read-only (legacy), until retention has emptied it (migrate.go).
type Shard struct {
	stream  *Stream
	info    atomic.Pointer[ShardInfo]
	lane    *wal.Lane
	legacy  atomic.Pointer[wal.Log] // nil when none is left
	limiter *limiter
	load    loadCounter // what the limiter admitted, for the autoscaler
	// Write counters for the shard-level metrics (EnableEnhancedMonitoring):
	// data+key bytes committed, and records refused by the rate limit.
	inBytes, writeThrottled atomic.Int64
	appended                atomic.Int64 // records committed since the store opened

	// gone remembers what retention deleted of the lane, to tell a reader
	// that finds its position deleted how many of its records went.
	goneMu sync.Mutex
	gone   []wal.LaneInfo // oldest first, at most maxGone
}

// maxGone bounds Shard.gone: a reader further behind than that many
// deleted segments has its loss counted up to the oldest one remembered.
const maxGone = 256

// ID is the shard's Kinesis-style id, e.g. shardId-000000000003.
func (sh *Shard) ID() string { return sh.info.Load().ID }

// Info returns a snapshot of the shard's description.
func (sh *Shard) Info() ShardInfo { return *sh.info.Load() }

// legacyLog returns the shard's pre-lane log if it still holds records.
func (sh *Shard) legacyLog() *wal.Log {
	if lg := sh.legacy.Load(); lg != nil && lg.FirstIndex() <= lg.LastIndex() {
		return lg
	}
	return nil
}

// TrimHorizon is the first sequence number a read may start at: the
// first record of the shard's legacy log while it holds any, else the
// first position of the stream's log that the shard may use (before it,
// records were deleted or belong to no shard), but not past Last()+1.
func (sh *Shard) TrimHorizon() uint64 {
	if lg := sh.legacyLog(); lg != nil {
		return lg.FirstIndex()
	}
	info := sh.info.Load()
	at := max(sh.lane.Log().FirstIndex(), info.StartSeq, sh.stream.logStart(), info.LegacyLast+1)
	return min(at, sh.Last()+1)
}

// Last is the last committed sequence number of the shard: its newest
// record; for a closed shard the end it was closed at; for a shard
// without stored records a position after every record it had, at
// least StartSeq-1.
func (sh *Shard) Last() uint64 {
	info := sh.info.Load()
	if info.Closed {
		return info.EndingSeq()
	}
	if _, last, _, _, ok := sh.lane.Stored(); ok {
		return last
	}
	if lg := sh.legacyLog(); lg != nil {
		// Its old log's records are older than any in the stream's log:
		// while they last, retention has deleted none of the lane's.
		return lg.LastIndex()
	}
	// Nothing stored: a position past every number the shard ever had,
	// which never goes back as retention deletes other shards' records.
	return max(info.StartSeq, sh.lane.Log().FirstIndex(), info.LegacyLast+1) - 1
}

// Newest is the sequence number of the shard's newest stored record; ok
// is false when it stores none.
func (sh *Shard) Newest() (seq uint64, ok bool) {
	if _, last, _, _, ok := sh.lane.Stored(); ok {
		return last, true
	}
	if lg := sh.legacyLog(); lg != nil {
		return lg.LastIndex(), true
	}
	return 0, false
}

// Records is how many records the shard stores.
func (sh *Shard) Records() uint64 {
	_, _, n, _, _ := sh.lane.Stored()
	if lg := sh.legacyLog(); lg != nil {
		n += lg.LastIndex() - lg.FirstIndex() + 1
	}
	return n
}

// RecordsIn is how many of the shard's stored records have a sequence
// number in [from, to).
func (sh *Shard) RecordsIn(from, to uint64) (uint64, error) {
	var n uint64
	if lg := sh.legacyLog(); lg != nil && from <= lg.LastIndex() {
		n = min(to, lg.LastIndex()+1) - max(from, lg.FirstIndex())
	}
	m, err := sh.lane.Count(from, to)
	return n + m, err
}

// WriteStats are the shard's write counters since the gateway started:
// data and key bytes committed (Kinesis's IncomingBytes) and records refused
// by its rate limit (WriteProvisionedThroughputExceeded).
func (sh *Shard) WriteStats() (inBytes, throttled int64) {
	return sh.inBytes.Load(), sh.writeThrottled.Load()
}

// Appended is how many records were committed to the shard since the
// store opened.
func (sh *Shard) Appended() int64 { return sh.appended.Load() }

// LogStats are the commit counters (groups and syncs) of the stream's
// log, which all its shards share, since it was opened.
func (st *Stream) LogStats() wal.Stats { return st.log.Stats() }

// Err reports the sticky I/O failure of the stream's log, if any.
func (sh *Shard) Err() error { return sh.lane.Log().Err() }

// Changed returns a channel closed when a record of the shard next
// becomes readable (other shards' records do not wake it), or when the
// shard map changes under it (a reshard closing it). Take it before
// reading so a commit between the read and the wait is not missed.
func (sh *Shard) Changed() <-chan struct{} { return sh.lane.Notify() }

// Read returns up to maxRecords committed records (and about maxBytes of
// data; always at least one record if any is available) starting at
// from, and the position to read from next: past the last record
// returned and the other shards' records it passed over, which can be
// past Last()+1. A closed shard's next stops at EndingSeq()+1, its end.
// A position whose records retention deleted yields a *TrimmedError.
func (sh *Shard) Read(from uint64, maxRecords int, maxBytes int) ([]Record, uint64, error) {
	info := sh.info.Load()
	if info.Closed && from > info.EndSeq {
		// Past its last record; an empty closed shard ends at
		// EndingSeq, which may be one past EndSeq.
		return nil, max(from, info.EndingSeq()+1), nil
	}
	var out []Record
	collect := func(idx uint64, payload []byte) error {
		r, err := sh.stream.decode(idx, payload)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}
	var next uint64
	var err error
	if lg := sh.legacyLog(); lg != nil && from <= lg.LastIndex() {
		if first := lg.FirstIndex(); from < first {
			return nil, from, &TrimmedError{Shard: info.ID, Requested: from, TrimHorizon: first, Lost: first - from}
		}
		next, err = lg.ReadFrom(from, maxRecords, maxBytes, collect)
	} else {
		if from <= info.LegacyLast {
			// The legacy log is gone: retention deleted it whole.
			return nil, from, &TrimmedError{Shard: info.ID, Requested: from, TrimHorizon: info.LegacyLast + 1, Lost: info.LegacyLast + 1 - from}
		}
		// Nothing of the shard lies before its start or the log's.
		at := max(from, info.StartSeq, sh.stream.logStart())
		if first := sh.lane.Log().FirstIndex(); at < first {
			// Retention deleted the log's front. If none of it was this
			// shard's (only other shards' records lay there), nothing is
			// lost: read on from what is left.
			if e := sh.trimmed(from, at, first); e.Lost > 0 {
				return nil, from, e
			}
			at = first
		}
		next, err = sh.lane.ReadFrom(at, maxRecords, maxBytes, collect)
		// A lane read stops after passing over a bounded amount of other
		// shards' records; go on while the shard has one further on.
		for err == nil && len(out) == 0 && next > at && next <= sh.Last() {
			at = next
			next, err = sh.lane.ReadFrom(at, maxRecords, maxBytes, collect)
		}
	}
	if info.Closed {
		next = min(next, info.EndingSeq()+1)
	}
	if errors.Is(err, wal.ErrCompacted) {
		return nil, from, sh.trimmed(from, from, sh.TrimHorizon())
	}
	if errors.Is(err, wal.ErrClosed) {
		return out, max(next, from), fmt.Errorf("%w: reading %s: %w", ErrClosed, sh.ID(), err)
	}
	var ke *KeyError
	if errors.As(err, &ke) && len(out) > 0 {
		// Hand over the records before the one that cannot be decrypted;
		// the next read starts at it and reports the error.
		return out, out[len(out)-1].Seq + 1, nil
	}
	if err != nil {
		return out, from, fmt.Errorf("shards: read %s at %d: %w", sh.ID(), from, err)
	}
	return out, max(next, from), nil
}

// trimmed describes a read at from whose records from at on, below th,
// retention deleted, with how many of them were the shard's (from the
// deleted segments' lane tables).
func (sh *Shard) trimmed(from, at, th uint64) *TrimmedError {
	e := &TrimmedError{Shard: sh.ID(), Requested: from, TrimHorizon: th}
	sh.goneMu.Lock()
	defer sh.goneMu.Unlock()
	for _, g := range sh.gone {
		switch {
		case g.Last < at:
		case g.First >= at:
			e.Lost += g.Records
		default:
			// at falls inside a deleted segment: count its share.
			e.Lost += g.Records * (g.Last - at + 1) / (g.Last - g.First + 1)
		}
	}
	return e
}

// forget records what retention deleted of the shard's lane.
func (sh *Shard) forget(removed []wal.SegmentInfo) {
	id := sh.lane.ID()
	sh.goneMu.Lock()
	defer sh.goneMu.Unlock()
	for _, seg := range removed {
		for _, li := range seg.Lanes {
			if li.Lane == id {
				sh.gone = append(sh.gone, li)
			}
		}
	}
	if n := len(sh.gone) - maxGone; n > 0 {
		sh.gone = append(sh.gone[:0], sh.gone[n:]...)
	}
}

// recordAt returns the stored record at seq, of any shard of the stream:
// what arrival-time searches need.
func (sh *Shard) recordAt(seq uint64) ([]byte, error) {
	if lg := sh.legacy.Load(); lg != nil && seq <= lg.LastIndex() {
		return lg.Read(seq)
	}
	return sh.lane.Log().Read(seq)
}

// arrivalAt returns the arrival time (unix ms) of the record at seq; an
// encrypted record's is readable without its key.
func (sh *Shard) arrivalAt(seq uint64) (int64, error) {
	b, err := sh.recordAt(seq)
	if err != nil {
		return 0, err
	}
	return sh.stream.arrival(seq, b)
}

// ArrivalOf returns the arrival time of the record at seq (a record of
// another shard if seq falls between this shard's: the stream's clock at
// that point).
func (sh *Shard) ArrivalOf(seq uint64) (time.Time, bool) {
	ms, err := sh.arrivalAt(seq)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// SeqAtTime returns the first sequence number whose arrival is at or after
// t, or Last()+1 if there is none. Arrival times come from one clock at
// append, so they are ordered (within a few milliseconds across shards)
// and a binary search over the stream's log works.
func (sh *Shard) SeqAtTime(t time.Time) uint64 {
	lo, hi := sh.TrimHorizon(), sh.Last()+1
	ms := t.UnixMilli()
	segs := sh.lane.Log().Segments()
	if lg := sh.legacyLog(); lg != nil {
		if last, err := sh.arrivalAt(lg.LastIndex()); err == nil && last >= ms {
			segs = lg.Segments()
			hi = min(hi, lg.LastIndex()+1)
		} else {
			lo = max(lo, lg.LastIndex()+1, sh.lane.Log().FirstIndex())
		}
	}
	// The segments' arrival ranges (footers) narrow the search to one
	// segment without reading a record.
	for _, seg := range segs {
		if !seg.Tagged || seg.LastIndex < seg.FirstIndex {
			break
		}
		if int64(seg.MaxTag) < ms {
			lo = max(lo, seg.LastIndex+1)
			continue
		}
		hi = min(hi, seg.LastIndex+1)
		break
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		arrival, err := sh.arrivalAt(mid)
		if err != nil {
			// Trimmed under us: the answer can only be later.
			lo = mid + 1
			continue
		}
		if arrival >= ms {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
