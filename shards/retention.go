package shards

import (
	"fmt"
	"math"
	"os"
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
		st.mu.RLock()
		shards := make([]*Shard, 0, len(st.shards))
		for _, sh := range st.shards {
			shards = append(shards, sh)
		}
		st.mu.RUnlock()
		for _, sh := range shards {
			s.trimByTime(sh, cutoff)
			sh.refreshUsage(false, 1) // any change since the last walk
		}
		if cfg.MaxBytes.Bytes() > 0 && cfg.OnFull == OnFullDropOldest {
			s.enforceSize(st, cfg)
		}
		s.expireClosed(st, cfg)
	}
}

// trimByTime deletes the leading sealed segments whose last record arrived
// before cutoff. The active segment is rolled first once its oldest record
// is past retention, so a shard that stops receiving data does not keep
// its last records forever. A record is therefore deleted at most
// retention plus its segment's time span after it arrived, and never later
// than twice the retention plus one retention pass.
func (s *Store) trimByTime(sh *Shard, cutoff int64) {
	segs := sh.wal().Segments()
	if n := len(segs); n > 0 && !segs[n-1].Sealed && segs[n-1].LastIndex >= segs[n-1].FirstIndex {
		oldest := func() (int64, bool) {
			if act := segs[n-1]; act.Tagged {
				return int64(act.MinTag), true
			}
			first, err := sh.arrivalAt(segs[n-1].FirstIndex)
			return first, err == nil
		}
		if ms, ok := oldest(); ok && ms < cutoff && !sh.Info().Closed {
			if err := sh.wal().Roll(); err != nil {
				s.log.Warn().Err(err).Str("shard", sh.ID()).Msg("retention could not roll the active segment")
			}
			segs = sh.wal().Segments()
		}
	}
	var upTo uint64
	for _, seg := range segs {
		if !seg.Sealed || seg.LastIndex < seg.FirstIndex {
			break
		}
		last, err := sh.segmentLastArrival(seg)
		if err != nil || last >= cutoff {
			break
		}
		upTo = seg.LastIndex + 1
	}
	if upTo > 0 {
		s.truncate(sh, upTo, "retention")
	}
}

// truncate deletes the segments of sh below upTo, first accounting for
// records that a consumer or the forwarder has not read: that is data loss
// an operator must see.
func (s *Store) truncate(sh *Shard, upTo uint64, why string) bool {
	from := sh.TrimHorizon()
	if upTo <= from {
		return false
	}
	unread := s.ckpts.unreadBelow(sh.stream.name, sh.ID(), from, upTo)
	removed, err := sh.wal().TruncateFront(upTo)
	if err != nil {
		s.log.Error().Err(err).Str("stream", sh.stream.name).Str("shard", sh.ID()).Msg("retention could not delete segments")
		return false
	}
	if len(removed) == 0 {
		return false
	}
	sh.forgetSegments(removed)
	sh.refreshUsage(true, 0)
	var n uint64
	for _, r := range removed {
		n += r.LastIndex - r.FirstIndex + 1
	}
	s.metrics.retentionDeleted.Add(int64(n))
	for consumer, lost := range unread {
		s.metrics.unreadDeleted.Add(int64(lost))
		s.ckpts.addLost(sh.stream.name, consumer, int64(lost))
		s.log.Warn().Str("stream", sh.stream.name).Str("shard", sh.ID()).Str("consumer", consumer).
			Uint64("records", lost).Str("reason", why).Msg("deleted records this consumer had not read yet")
	}
	s.log.Info().Str("stream", sh.stream.name).Str("shard", sh.ID()).Int("segments", len(removed)).
		Uint64("records", n).Str("reason", why).Msg("deleted segments")
	return true
}

// enforceSize deletes the oldest sealed segments of the stream, across its
// shards, until its allocated bytes fit under max_bytes or nothing more
// can go.
func (s *Store) enforceSize(st *Stream, cfg StreamConfig) {
	limit := cfg.MaxBytes.Bytes()
	for st.Bytes() >= limit {
		var (
			victim *Shard
			seg    wal.SegmentInfo
			oldest int64 = math.MaxInt64
		)
		st.mu.RLock()
		for _, sh := range st.shards {
			segs := sh.wal().Segments()
			if len(segs) == 0 || !segs[0].Sealed || segs[0].LastIndex < segs[0].FirstIndex {
				continue
			}
			t, err := sh.segmentLastArrival(segs[0])
			if err == nil && t < oldest {
				victim, seg, oldest = sh, segs[0], t
			}
		}
		st.mu.RUnlock()
		if victim == nil || !s.truncate(victim, seg.LastIndex+1, "max_bytes") {
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
		sh.wal().Close()
		if err := os.RemoveAll(fmt.Sprintf("%s/%s", st.dir, sh.ID())); err != nil {
			s.log.Warn().Err(err).Str("shard", sh.ID()).Msg("could not remove expired shard")
		}
		s.log.Info().Str("stream", st.name).Str("shard", sh.ID()).Msg("closed shard expired")
	}
}
