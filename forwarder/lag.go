package forwarder

import (
	"time"

	"github.com/weir-gateway/weir/shards"
)

// snapshot is what the engine last published for Lag, which may be called
// from any goroutine.
type snapshot struct {
	sent, resent, lost, filtered int64
	state                        State
	published                    bool // state is set; before the engine's first event it is not
	lastErr                      string
	avgSize                      float64
	lanes                        []laneSnap
}

type laneSnap struct {
	sh           ShardReader
	info         shards.ShardInfo
	base, next   uint64
	unacked      int
	unackedBytes int
}

// publish refreshes the snapshot; the loop calls it after every event, so
// Lag is never more than one event behind.
func (e *engine) publish(now time.Time, stopped bool) {
	state := State{Phase: Stopped}
	if !stopped {
		state = e.state(now)
	}
	s := snapshot{sent: e.sent, resent: e.resent, lost: e.lost, filtered: e.filtered, state: state, published: true, lastErr: e.lastErr,
		lanes: make([]laneSnap, 0, len(e.order))}
	if e.sizeN > 0 {
		s.avgSize = e.sizeSum / e.sizeN
	}
	for _, l := range e.order {
		if l.sh == nil {
			continue
		}
		s.lanes = append(s.lanes, laneSnap{sh: l.sh, info: l.info, base: l.base, next: l.next,
			unacked: l.unacked, unackedBytes: l.unackedBytes})
	}
	e.f.mu.Lock()
	e.f.snap = s
	e.f.mu.Unlock()
}

func (e *engine) state(now time.Time) State {
	switch {
	case e.f.ctl.held.Load():
		return State{Phase: Paused, Reason: ReasonOperator}
	case e.localErr != nil:
		return State{Phase: Paused, Reason: "local stream " + e.cfg.Stream + " unavailable: " + e.localErr.Error()}
	case e.paused != nil:
		return State{Phase: Paused, Reason: e.paused.code + ": " + e.paused.fix}
	case e.gFails > 0:
		return State{Phase: Backoff}
	}
	for _, g := range e.plan.pace.groups {
		if g.notBefore.After(now) {
			return State{Phase: Backoff}
		}
	}
	return State{Phase: Running}
}

// Lag reports what is not yet upstream. Safe to call at any time.
func (f *Forwarder) Lag() Lag {
	f.mu.Lock()
	s, started := f.snap, f.started
	f.mu.Unlock()
	lag := Lag{State: s.state, LastError: s.lastErr, Sent: s.sent, Resent: s.resent, Lost: s.lost, Filtered: s.filtered}
	if !s.published {
		lag.State = State{Phase: Running}
		if !started {
			lag.State = State{Phase: Stopped}
		}
	}
	var oldest int64
	for _, ls := range s.lanes {
		last := ls.sh.Last()
		if ls.info.Closed {
			last = min(last, ls.info.EndSeq)
		}
		th := ls.sh.TrimHorizon()
		var unread uint64
		if from := max(ls.next, th); last >= from {
			// The shard's own records: other shards' are in the gaps.
			unread, _ = ls.sh.RecordsIn(from, last+1)
		}
		lag.Records += int64(ls.unacked) + int64(unread)
		lag.Bytes += int64(ls.unackedBytes) + int64(float64(unread)*s.avgSize)
		if ls.unacked == 0 && unread == 0 {
			continue
		}
		if t, ok := ls.sh.ArrivalOf(max(ls.base, th)); ok {
			if a := t.UnixMilli(); oldest == 0 || a < oldest {
				oldest = a
			}
		}
	}
	if oldest > 0 {
		lag.OldestAge = max(0, f.opts.Clock().Sub(time.UnixMilli(oldest)))
	}
	return lag
}
