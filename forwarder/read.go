package forwarder

import (
	"errors"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/weir-gateway/weir/shards"
)

// refresh re-reads the local shard map: new shards (reshards) get lanes,
// closed ones get their end, expired ones go.
func (e *engine) refresh(now time.Time) {
	infos, err := e.f.src.Shards()
	if err != nil {
		if e.localErr == nil || !sameLocalErr(e.localErr, err) {
			e.log.Warn().Err(err).Msg("local stream unavailable; forwarding waits for it")
		}
		e.localErr = err
		return
	}
	if e.localErr != nil {
		e.log.Info().Msg("local stream available")
		e.localErr = nil
	}
	seen := make(map[string]bool, len(infos))
	changed := false
	for _, info := range infos {
		seen[info.ID] = true
		l := e.lanes[info.ID]
		if l == nil {
			l = &lane{id: info.ID}
			if c, ok := e.ckpts[info.ID]; ok {
				l.committed, l.stored = c, true
				l.start(max(c+1, info.StartSeq))
			}
			e.lanes[info.ID] = l
			changed = true
		}
		l.info = info
		if l.sh == nil {
			sh, err := e.f.src.Shard(info.ID)
			if err != nil {
				continue // gone between Shards and Shard: the next refresh sees it
			}
			l.sh = sh
			if l.next == 0 {
				// No checkpoint: a new forwarder sends everything still stored.
				l.start(max(sh.TrimHorizon(), info.StartSeq))
			}
		}
	}
	for id, l := range e.lanes {
		if !seen[id] {
			if !l.readAll() {
				e.log.Info().Str("shard", id).Msg("local shard expired before it was read to its end")
			}
			delete(e.lanes, id)
			changed = true
		}
	}
	if changed {
		e.order = e.order[:0]
		for _, l := range e.lanes {
			e.order = append(e.order, l)
		}
		sort.Slice(e.order, func(i, j int) bool { return e.order[i].id < e.order[j].id })
	}
}

// parentsDone: a child shard is read only once every parent is closed,
// read to its end and acknowledged upstream, so a key that moved to the
// child keeps its order. A parent no longer listed has expired.
func (e *engine) parentsDone(l *lane) bool {
	for _, p := range []string{l.info.ParentID, l.info.AdjacentParentID} {
		if p == "" {
			continue
		}
		// An empty closed parent is done only once its own parents are:
		// back-to-back reshards chain empty shards between a parent with
		// records still unsent and the child.
		if pl := e.lanes[p]; pl != nil && (!pl.done() || !e.parentsDone(pl)) {
			return false
		}
	}
	return true
}

func (e *engine) readable(l *lane, now time.Time) bool {
	return l.sh != nil && !l.readAll() && (!l.caughtUp || l.fired.Load()) &&
		now.UnixNano() >= l.retryAt && l.span() < uint64(e.opts.MaxAhead) && e.parentsDone(l)
}

func (e *engine) full() bool {
	return e.buffered >= e.opts.MaxBufferedRecords || e.bufferedBytes >= e.opts.MaxBufferedBytes
}

// fill reads ahead from the lanes, round robin, until the buffer is full
// or every lane is caught up.
func (e *engine) fill(now time.Time) {
	for progress := true; progress; {
		progress = false
		for _, l := range e.order {
			if e.full() {
				return
			}
			if e.readable(l, now) && e.read(l, now) {
				progress = true
			}
		}
	}
}

// read reads one chunk of a lane into the planner; false if nothing came.
func (e *engine) read(l *lane, now time.Time) bool {
	if l.fired.Load() {
		l.fired.Store(false)
		l.watching = false
	}
	l.caughtUp = false
	ch := l.sh.Changed() // before Read, so a commit in between is not missed
	n := min(maxBatchRecords, e.opts.MaxBufferedRecords-e.buffered, e.opts.MaxAhead-int(l.span()))
	nb := max(1, min(e.plan.lim.maxItemBytes, e.opts.MaxBufferedBytes-e.bufferedBytes))
	recs, next, err := l.sh.Read(l.next, n, nb)
	var te *shards.TrimmedError
	if errors.As(err, &te) {
		if te.TrimHorizon > l.next {
			e.lost += int64(te.Lost)
			e.log.WithLevel(lostLevel(te.Lost)).Str("shard", l.id).Uint64("first", l.next).Uint64("last", te.TrimHorizon-1).
				Uint64("records", te.Lost).Msg("records deleted by retention before they were forwarded; continuing at the trim horizon")
			l.skipTo(te.TrimHorizon)
		} else {
			l.retryAt = now.Add(time.Second).UnixNano()
		}
		return true
	}
	if err != nil {
		if l.retryAt == 0 || now.UnixNano()-l.retryAt > int64(time.Minute) {
			e.log.Error().Err(err).Str("shard", l.id).Uint64("seq", l.next).Msg("cannot read local shard; retrying")
		}
		l.retryAt = now.Add(time.Second).UnixNano()
		return false
	}
	if len(recs) == 0 && next > l.next {
		// Passed over other shards' records of the stream's log: go on
		// from there, now if the shard has more.
		l.skipTo(next)
		if next <= l.sh.Last() {
			return true
		}
	}
	if len(recs) == 0 {
		l.caughtUp = true
		if !l.watching {
			e.watch(l, ch)
		}
		return false
	}
	for i := range recs {
		r := &recs[i]
		if !e.filter.match(r) {
			// Not for this sink: done without sending, so the watermark
			// moves past it (skipTo marks the gap acknowledged).
			e.filtered++
			l.skipTo(r.Seq + 1)
			continue
		}
		payload, err := e.sink.encode(l.id, r)
		if err != nil {
			e.lost++
			e.log.Error().Err(err).Str("shard", l.id).Uint64("seq", r.Seq).Str("key", r.Key).
				Msg("record cannot be sent upstream; skipped and counted as lost")
			l.skipTo(r.Seq + 1)
			continue
		}
		ent := &entry{lane: l, seq: r.Seq, key: r.Key, arrival: r.Arrival, payload: payload}
		if e.plan.lim.keepRecords {
			ent.rec = r
		}
		l.read(ent)
		e.plan.push(ent, now)
		e.buffered++
		e.bufferedBytes += len(payload)
		e.sizeSum += float64(len(payload))
		e.sizeN++
	}
	l.skipTo(max(next, recs[len(recs)-1].Seq+1))
	return true
}

// lostLevel is warn when retention took records the forwarder had not
// sent, debug when the positions it skips held only other shards'.
func lostLevel(lost uint64) zerolog.Level {
	if lost == 0 {
		return zerolog.DebugLevel
	}
	return zerolog.WarnLevel
}

// watch wakes the loop at the shard's next commit.
func (e *engine) watch(l *lane, ch <-chan struct{}) {
	l.watching = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		select {
		case <-ch:
			l.fired.Store(true)
			select {
			case e.wake <- struct{}{}:
			default:
			}
		case <-e.stopWatch:
		}
	}()
}
