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
}

// EndingSeq is the index a closed shard reports as its
// EndingSequenceNumber: its last record, but never below its first
// possible one, so an empty closed shard does not end before it starts.
func (i ShardInfo) EndingSeq() uint64 { return max(i.EndSeq, i.StartSeq) }

// Contains reports whether the hash key falls in the shard's range.
func (i ShardInfo) Contains(h HashKey) bool {
	return h.Cmp(i.StartHash) >= 0 && h.Cmp(i.EndHash) <= 0
}

// Shard is one log of a stream. Its log has exactly one writer (the wal's
// committer); any number of readers may read it concurrently.
type Shard struct {
	stream  *Stream
	info    atomic.Pointer[ShardInfo]
	logp    atomic.Pointer[wal.Log] // replaced only when a failed reshard reopens a sealed parent
	limiter *limiter
	usage   usage       // disk accounting (usage.go)
	load    loadCounter // what the limiter admitted, for the autoscaler
	// Write counters for the shard-level metrics (EnableEnhancedMonitoring):
	// data+key bytes committed, and records refused by the rate limit.
	inBytes, writeThrottled atomic.Int64

	// segLast caches the arrival time of the last record of each sealed
	// segment (by the segment's first index): retention asks for it on
	// every pass and sealed segments never change.
	segMu   sync.Mutex
	segLast map[uint64]int64
}

func (sh *Shard) wal() *wal.Log { return sh.logp.Load() }

// ID is the shard's Kinesis-style id, e.g. shardId-000000000003.
func (sh *Shard) ID() string { return sh.info.Load().ID }

// Info returns a snapshot of the shard's description.
func (sh *Shard) Info() ShardInfo { return *sh.info.Load() }

// TrimHorizon is the first sequence number still stored; Last()+1 when the
// shard holds nothing.
func (sh *Shard) TrimHorizon() uint64 { return sh.wal().FirstIndex() }

// Last is the last committed sequence number, or StartSeq-1 if none.
func (sh *Shard) Last() uint64 { return sh.wal().LastIndex() }

// WriteStats are the shard's write counters since the gateway started:
// data and key bytes committed (Kinesis's IncomingBytes) and records refused
// by its rate limit (WriteProvisionedThroughputExceeded).
func (sh *Shard) WriteStats() (inBytes, throttled int64) {
	return sh.inBytes.Load(), sh.writeThrottled.Load()
}

// LogStats are the shard log's commit counters (groups and syncs) since
// it was opened.
func (sh *Shard) LogStats() wal.Stats { return sh.wal().Stats() }

// Err reports the shard's sticky I/O failure, if any.
func (sh *Shard) Err() error { return sh.wal().Err() }

// Changed returns a channel closed at the next commit. Take it before
// reading so a commit between the read and the wait is not missed.
func (sh *Shard) Changed() <-chan struct{} { return sh.wal().Notify() }

// Read returns up to maxRecords committed records (and about maxBytes of
// data; always at least one record if any is available) starting at from.
// A position before the trim horizon yields a *TrimmedError.
func (sh *Shard) Read(from uint64, maxRecords int, maxBytes int) ([]Record, error) {
	if th := sh.TrimHorizon(); from < th {
		return nil, &TrimmedError{Shard: sh.ID(), Requested: from, TrimHorizon: th}
	}
	var out []Record
	_, err := sh.wal().ReadFrom(from, maxRecords, maxBytes, func(idx uint64, payload []byte) error {
		r, err := sh.stream.decode(idx, payload)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if errors.Is(err, wal.ErrCompacted) {
		return nil, &TrimmedError{Shard: sh.ID(), Requested: from, TrimHorizon: sh.TrimHorizon()}
	}
	if errors.Is(err, wal.ErrClosed) {
		return out, fmt.Errorf("%w: reading %s: %w", ErrClosed, sh.ID(), err)
	}
	var ke *KeyError
	if errors.As(err, &ke) && len(out) > 0 {
		// Hand over the records before the one that cannot be decrypted;
		// the next read starts at it and reports the error.
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("shards: read %s at %d: %w", sh.ID(), from, err)
	}
	return out, nil
}

// arrivalAt returns the arrival time (unix ms) of the record at seq; an
// encrypted record's is readable without its key.
func (sh *Shard) arrivalAt(seq uint64) (int64, error) {
	b, err := sh.wal().Read(seq)
	if err != nil {
		return 0, err
	}
	return sh.stream.arrival(seq, b)
}

// ArrivalOf returns the arrival time of the record at seq.
func (sh *Shard) ArrivalOf(seq uint64) (time.Time, bool) {
	ms, err := sh.arrivalAt(seq)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// SeqAtTime returns the first sequence number whose arrival is at or after
// t, or Last()+1 if there is none. Arrival times come from one clock at
// append, so they are ordered within a shard and a binary search works.
func (sh *Shard) SeqAtTime(t time.Time) uint64 {
	lo, hi := sh.TrimHorizon(), sh.Last()+1
	ms := t.UnixMilli()
	// The segments' arrival ranges (footers) narrow the search to one
	// segment without reading a record.
	for _, seg := range sh.wal().Segments() {
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

// segmentLastArrival returns the arrival time (unix ms) of the newest record
// in a sealed segment.
func (sh *Shard) segmentLastArrival(seg wal.SegmentInfo) (int64, error) {
	if seg.Tagged {
		return int64(seg.MaxTag), nil // from the footer: no read
	}
	sh.segMu.Lock()
	ms, ok := sh.segLast[seg.FirstIndex]
	sh.segMu.Unlock()
	if ok {
		return ms, nil
	}
	ms, err := sh.arrivalAt(seg.LastIndex)
	if err != nil {
		return 0, err
	}
	sh.segMu.Lock()
	sh.segLast[seg.FirstIndex] = ms
	sh.segMu.Unlock()
	return ms, nil
}

func (sh *Shard) forgetSegments(removed []wal.SegmentInfo) {
	sh.segMu.Lock()
	for _, s := range removed {
		delete(sh.segLast, s.FirstIndex)
	}
	sh.segMu.Unlock()
}
