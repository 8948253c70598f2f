package shards

import (
	"math"
	"time"

	"github.com/weir-gateway/weir/wal"
)

func (s *Store) retentionLoop() {
	defer s.done.Done()
	t := time.NewTicker(s.opts.RetentionEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.EnforceRetention()
		}
	}
}

// EnforceRetention deletes whole sealed segments whose newest record is
// older than the stream's retention, applies max_bytes with drop_oldest,
// and expires closed shards that have aged out. It runs on a timer; tests
// with an injected clock call it directly.
func (s *Store) EnforceRetention() {
	for _, st := range s.Streams() {
		cfg := st.Config()
		cutoff := s.now().Add(-cfg.Retention.D()).UnixMilli()
		for _, lg := range st.logs() {
			s.trimByTime(st, lg, cutoff)
		}
		st.dropEmptyLegacy()
		st.refreshUsage(false, 1) // any change since the last walk
		if cfg.MaxBytes.Bytes() > 0 && cfg.OnFull == OnFullDropOldest {
			s.enforceSize(st, cfg)
		}
		s.expireClosed(st, cfg)
	}
}

// logs are the stream's log and the legacy logs of its shards that still
// hold records, the stream's log first.
func (st *Stream) logs() []*wal.Log {
	out := []*wal.Log{st.log}
	st.mu.RLock()
	defer st.mu.RUnlock()
	for _, sh := range st.shards {
		if lg := sh.legacyLog(); lg != nil {
			out = append(out, lg)
		}
	}
	return out
}

// trimByTime deletes the leading sealed segments of lg whose last record
// arrived before cutoff. The active segment is rolled first once its
// oldest record is past retention, so a stream that stops receiving data
// does not keep its last records forever. A record is therefore deleted at
// most retention plus its segment's time span after it arrived, and never
// later than twice the retention plus one retention pass.
func (s *Store) trimByTime(st *Stream, lg *wal.Log, cutoff int64) {
	segs := lg.Segments()
	if n := len(segs); n > 0 && !segs[n-1].Sealed && segs[n-1].LastIndex >= segs[n-1].FirstIndex {
		if ms, ok := st.segmentFirstArrival(lg, segs[n-1]); ok && ms < cutoff {
			if err := lg.Roll(); err != nil {
				s.log.Warn().Err(err).Str("stream", st.name).Msg("retention could not roll the active segment")
			}
			segs = lg.Segments()
		}
	}
	var upTo uint64
	for _, seg := range segs {
		if !seg.Sealed || seg.LastIndex < seg.FirstIndex {
			break
		}
		last, err := st.segmentLastArrival(lg, seg)
		if err != nil || last >= cutoff {
			break
		}
		upTo = seg.LastIndex + 1
	}
	if upTo > 0 {
		s.truncate(st, lg, upTo, "retention")
	}
}

// segmentFirstArrival is the arrival time (unix ms) of a segment's oldest
// record.
func (st *Stream) segmentFirstArrival(lg *wal.Log, seg wal.SegmentInfo) (int64, bool) {
	if seg.Tagged {
		return int64(seg.MinTag), true
	}
	b, err := lg.Read(seg.FirstIndex)
	if err != nil {
		return 0, false
	}
	ms, err := st.arrival(seg.FirstIndex, b)
	return ms, err == nil
}

// segmentLastArrival returns the arrival time (unix ms) of the newest
// record in a sealed segment: from its footer, or (a version 1 segment)
// read once and cached, since sealed segments never change.
func (st *Stream) segmentLastArrival(lg *wal.Log, seg wal.SegmentInfo) (int64, error) {
	if seg.Tagged {
		return int64(seg.MaxTag), nil // from the footer: no read
	}
	st.segMu.Lock()
	ms, ok := st.segLast[seg.Path]
	st.segMu.Unlock()
	if ok {
		return ms, nil
	}
	b, err := lg.Read(seg.LastIndex)
	if err != nil {
		return 0, err
	}
	if ms, err = st.arrival(seg.LastIndex, b); err != nil {
		return 0, err
	}
	st.segMu.Lock()
	if st.segLast == nil {
		st.segLast = map[string]int64{}
	}
	st.segLast[seg.Path] = ms
	st.segMu.Unlock()
	return ms, nil
}

// truncate deletes the segments of lg (the stream's log or a shard's
// legacy one) below upTo, first accounting for records that a consumer or
// the forwarder has not read: that is data loss an operator must see.
func (s *Store) truncate(st *Stream, lg *wal.Log, upTo uint64, why string) bool {
	from := lg.FirstIndex()
	if upTo <= from {
		return false
	}
	st.mu.RLock()
	shards := make([]*Shard, 0, len(st.shards))
	for _, sh := range st.shards {
		if lg == st.log || sh.legacy.Load() == lg {
			shards = append(shards, sh)
		}
	}
	st.mu.RUnlock()
	unread := map[*Shard]map[string]uint64{}
	for _, sh := range shards {
		unread[sh] = s.ckpts.unreadBelow(st.name, sh.ID(), from, upTo, func(a, b uint64) uint64 {
			n, err := sh.RecordsIn(a, b)
			if err != nil {
				s.log.Warn().Err(err).Str("shard", sh.ID()).Msg("could not count the records retention deletes")
			}
			return n
		})
	}
	removed, err := lg.TruncateFront(upTo)
	if err != nil {
		s.log.Error().Err(err).Str("stream", st.name).Msg("retention could not delete segments")
		return false
	}
	if len(removed) == 0 {
		return false
	}
	st.segMu.Lock()
	for _, r := range removed {
		delete(st.segLast, r.Path)
	}
	st.segMu.Unlock()
	var n uint64
	for _, r := range removed {
		n += r.LastIndex - r.FirstIndex + 1
	}
	for _, sh := range shards {
		sh.forget(removed)
	}
	st.refreshUsage(true, 0)
	s.metrics.retentionDeleted.Add(int64(n))
	for sh, byConsumer := range unread {
		for consumer, lost := range byConsumer {
			if lost == 0 {
				continue
			}
			s.metrics.unreadDeleted.Add(int64(lost))
			s.ckpts.addLost(st.name, consumer, int64(lost))
			s.log.Warn().Str("stream", st.name).Str("shard", sh.ID()).Str("consumer", consumer).
				Uint64("records", lost).Str("reason", why).Msg("deleted records this consumer had not read yet")
		}
	}
	s.log.Info().Str("stream", st.name).Int("segments", len(removed)).
		Uint64("records", n).Str("reason", why).Msg("deleted segments")
	return true
}

// enforceSize deletes the oldest sealed segments of the stream, from its
// log or its shards' legacy logs, until its allocated bytes fit under
// max_bytes or nothing more can go.
func (s *Store) enforceSize(st *Stream, cfg StreamConfig) {
	limit := cfg.MaxBytes.Bytes()
	for st.Bytes() >= limit {
		var (
			victim *wal.Log
			seg    wal.SegmentInfo
			oldest int64 = math.MaxInt64
		)
		for _, lg := range st.logs() {
			segs := lg.Segments()
			if len(segs) == 0 || !segs[0].Sealed || segs[0].LastIndex < segs[0].FirstIndex {
				continue
			}
			t, err := st.segmentLastArrival(lg, segs[0])
			if err == nil && t < oldest {
				victim, seg, oldest = lg, segs[0], t
			}
		}
		if victim == nil || !s.truncate(st, victim, seg.LastIndex+1, "max_bytes") {
			return
		}
	}
}

// expireClosed forgets closed shards that hold no more data and whose
// retention has passed since they closed, as Kinesis expires them.
func (s *Store) expireClosed(st *Stream, cfg StreamConfig) {
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	st.mu.RLock()
	var gone []string
	m := st.meta
	for _, sh := range st.shards {
		info := sh.Info()
		if info.Closed && sh.TrimHorizon() > sh.Last() && s.now().Sub(info.ClosedAt) > cfg.Retention.D() {
			gone = append(gone, info.ID)
		}
	}
	st.mu.RUnlock()
	if len(gone) == 0 {
		return
	}
	drop := map[string]bool{}
	for _, id := range gone {
		drop[id] = true
	}
	next := m
	next.Shards = nil
	for _, sm := range m.Shards {
		if !drop[sm.ID] {
			next.Shards = append(next.Shards, sm)
		}
	}
	if err := writeMeta(s.opts.metaFS, st.dir, next); err != nil {
		s.log.Error().Err(err).Str("stream", st.name).Msg("could not expire closed shards")
		return
	}
	st.mu.RLock()
	var closing []*Shard
	for _, id := range gone {
		closing = append(closing, st.shards[id])
	}
	st.mu.RUnlock()
	st.install(next, nil, gone)
	for _, sh := range closing {
		st.dropLegacy(sh)
		s.log.Info().Str("stream", st.name).Str("shard", sh.ID()).Msg("closed shard expired")
	}
}
