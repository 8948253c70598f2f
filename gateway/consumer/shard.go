package consumer

import (
	"sync"

	"github.com/weir-gateway/weir/shards"
)

// shardState is what the consumer knows about one shard. id, parents and
// phase belong to the run loop; everything under mu is shared
// with the shard's reader and with Checkpoint callers.
type shardState struct {
	id      string
	parents []string
	phase   phase
	// With StopAtEnd: whether the shard existed when Run started, and its
	// last record then (stopAt); shards made later are not read.
	inSnapshot bool
	stopAt     uint64

	mu           sync.Mutex
	closed       bool
	endSeq       uint64
	gone         bool   // no longer listed (expired)
	trimStart    bool   // the checkpoint was trimmed: start at the trim horizon, loss already reported
	delivered    uint64 // last record the handler returned from
	hasDelivered bool
	deliveredN   int64 // records delivered in this process
	committedSeq uint64
	hasCommitted bool
	committedN   int64

	commitMu sync.Mutex
}

type phase int

const (
	phaseIdle phase = iota
	phaseReading
	phaseFinished
)

// deliver records that the handler has processed seq and returns how many
// records are delivered but not committed.
func (s *shardState) deliver(seq uint64) (uncommitted int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trimStart = false
	s.delivered, s.hasDelivered = seq, true
	s.deliveredN++
	return s.deliveredN - s.committedN
}

// finish marks every record of a closed shard as delivered, so that the
// shard's checkpoint says "done" even if its last records were deleted or it
// held none.
func (s *shardState) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasDelivered || s.delivered < s.endSeq {
		s.delivered, s.hasDelivered = s.endSeq, true
	}
}

// pending returns the position to commit, if it is newer than the last
// commit.
func (s *shardState) pending() (seq uint64, n int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone || !s.hasDelivered || (s.hasCommitted && s.committedSeq >= s.delivered) {
		return 0, 0, false
	}
	return s.delivered, s.deliveredN, true
}

func (s *shardState) committed(seq uint64, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasCommitted || seq > s.committedSeq {
		s.committedSeq, s.hasCommitted = seq, true
	}
	s.committedN = max(s.committedN, n)
}

// position is where reading resumes: after the last delivered record, or at
// the trim horizon.
func (s *shardState) position() (typ, seq string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasDelivered || s.trimStart {
		return "TRIM_HORIZON", ""
	}
	return "AFTER_SEQUENCE_NUMBER", formatSeq(s.id, s.delivered)
}

// startAt sets the position reading resumes after, as a checkpoint does.
func (s *shardState) startAt(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered, s.hasDelivered = seq, true
	s.committedSeq, s.hasCommitted = seq, true
	s.trimStart = false
}

// caughtUp reports whether StopAtEnd's target is delivered.
func (s *shardState) caughtUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasDelivered && s.delivered >= s.stopAt
}

// done reports whether the checkpoint covers the whole (closed) shard.
func (s *shardState) done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed && s.hasCommitted && s.committedSeq >= s.endSeq
}

// formatSeq is the API sequence number of index v of shard.
func formatSeq(shard string, v uint64) string { return shards.FormatSeq(shard, v) }

// parseSeq reads an API sequence number as its index in its shard (the
// gateway answers with numbers of the shard asked about).
func parseSeq(s string) (uint64, bool) {
	_, v, err := shards.DecodeSeq(s)
	return v, err == nil
}
