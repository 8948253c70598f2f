package forwarder

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/weir-gateway/weir/internal/backoff"
)

// engine is one Run of a forwarder. A single goroutine (run) owns all of
// its state; requests go out on their own goroutines and come back on
// results, and shard watchers only set a flag and ping wake.
type engine struct {
	f    *Forwarder
	cfg  Config
	opts Options
	log  zerolog.Logger
	now  func() time.Time
	sink sink
	up   *uplinkUser // nil: no shared uplink budget

	lanes  map[string]*lane
	order  []*lane // by shard id: parents before children
	ckpts  map[string]uint64
	plan   *planner
	bucket *tokenBucket
	bo     backoff.Exp // request-level backoff

	results   chan result
	wake      chan struct{}
	upMap     chan []upShard
	stopWatch chan struct{}
	wg        sync.WaitGroup
	reqCtx    context.Context
	reqCancel context.CancelFunc

	inflight      int
	draining      bool // shutting down: see shutdown
	buffered      int  // records read and not yet acknowledged
	bufferedBytes int
	sizeSum       float64 // payload bytes read, for the unread-bytes estimate
	sizeN         float64

	gFails        int       // consecutive failed requests
	gNotBefore    time.Time // no request before this
	paused        *failure  // permanent failure being probed
	pauseFails    int
	probeAt       time.Time
	probing       bool // the one probe request is in flight
	localErr      error
	lastErr       string
	lastWarn      time.Time
	lastCommitErr time.Time
	// uncommitted (runs only): an acknowledged run's watermark is not
	// checkpointed yet, so no run may go out; see handle.
	uncommitted bool

	filter                       Filter
	sent, resent, lost, filtered int64 // see Lag

	nextMap, nextCommit time.Time
	finalErr            error
}

type result struct {
	b   *batch
	out sendOutcome
	err error
}

func newEngine(f *Forwarder) *engine {
	o := f.opts
	rnd := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	lim := f.sink.limits()
	bo := backoff.Exp{Base: o.BackoffBase, Cap: o.BackoffCap, Rand: rnd}
	return &engine{
		f: f, cfg: f.cfg, opts: o, log: f.log, now: o.Clock, sink: f.sink, filter: f.cfg.Filter,
		lanes:     map[string]*lane{},
		plan:      newPlanner(lim, newPacer(bo), bo),
		bucket:    newTokenBucket(f.cfg.MaxBytesPerSec.Bytes(), o.Clock()),
		bo:        bo,
		results:   make(chan result, f.cfg.MaxInFlight),
		wake:      make(chan struct{}, 1),
		upMap:     make(chan []upShard, 1),
		stopWatch: make(chan struct{}),
	}
}

func (e *engine) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.f.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Requests are not cancelled with ctx: on shutdown those in flight get
	// DrainTimeout to finish, so their acknowledgements reach the
	// checkpoint instead of being resent after the restart.
	e.reqCtx, e.reqCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer e.reqCancel()
	defer func() {
		close(e.stopWatch)
		e.wg.Wait()
	}()

	ckpts, err := e.f.ckpt.Get(e.cfg.Stream, e.f.consumer)
	if err != nil {
		e.publish(e.now(), true)
		return fmt.Errorf("forwarder: read checkpoints of %s: %w", e.f.consumer, err)
	}
	e.ckpts = ckpts
	if sm, ok := e.sink.(shardMapper); ok && sm.mapsShards() {
		e.wg.Add(1)
		go e.listLoop(ctx, sm)
	}
	e.up = e.opts.Uplink.join(e.cfg.Priority, e.wake)
	defer e.up.leave()
	ev := e.log.Info().Str("kind", e.cfg.Kind).Int("max_in_flight", e.cfg.MaxInFlight).Int("priority", e.cfg.Priority)
	if e.cfg.Kind == KindKinesis {
		ev = ev.Str("envelope", e.cfg.Envelope).Bool("aggregate", e.cfg.Aggregate)
	}
	ev.Msg("forwarder started")

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := e.now()
		if !now.Before(e.nextMap) {
			e.refresh(now)
			e.nextMap = now.Add(e.opts.ShardMapInterval)
		}
		var wakeAt time.Time
		if !e.f.ctl.held.Load() {
			e.fill(now)
			wakeAt = e.dispatch(now)
		} else {
			e.up.idle() // held by an operator: let the sinks below use the uplink
		}
		if !now.Before(e.nextCommit) {
			if e.commit() == nil {
				e.uncommitted = false
			}
			e.nextCommit = now.Add(e.opts.CommitInterval)
		}
		e.publish(now, false)
		for _, t := range []time.Time{e.nextMap, e.nextCommit} {
			if wakeAt.IsZero() || t.Before(wakeAt) {
				wakeAt = t
			}
		}
		timer.Reset(max(wakeAt.Sub(e.now()), 0))
		select {
		case r := <-e.results:
			e.handle(r, e.now())
		case <-e.wake:
		case <-e.f.ctl.changed:
		case up := <-e.upMap:
			e.plan.pace.setShards(up)
		case <-timer.C:
		case <-ctx.Done():
			e.shutdown()
			return ctx.Err()
		}
	}
}

// shutdown drains before the final commit: no more reading, but records
// below the highest acknowledged one of their shard are still sent (with
// the requests in flight, up to DrainTimeout), so the watermarks catch up
// with what the upstream has and a restart resends as little as possible.
// Requests still out at the deadline are abandoned; their records are
// resent after the restart.
func (e *engine) shutdown() {
	start := e.now()
	deadline := start.Add(e.opts.DrainTimeout)
	e.draining = true
	e.plan.eligible = func(ks *keyState) bool { h := ks.head(); return h.seq <= h.lane.maxAcked }
	e.plan.rewake(start)
	timer := time.NewTimer(e.opts.DrainTimeout)
	defer timer.Stop()
	abandoned := false
	for {
		now := e.now()
		var wakeAt time.Time
		if !abandoned && now.Before(deadline) {
			wakeAt = e.dispatch(now)
		}
		idle := wakeAt.IsZero() || !wakeAt.Before(deadline) || abandoned
		if e.inflight == 0 && idle {
			break
		}
		d := deadline.Sub(now)
		if !idle {
			d = wakeAt.Sub(now)
		}
		timer.Reset(max(d, 0))
		select {
		case r := <-e.results:
			e.handle(r, e.now())
		case <-timer.C:
			if !abandoned && !e.now().Before(deadline) && e.inflight > 0 {
				e.log.Warn().Int("requests", e.inflight).Msg("abandoning requests in flight at shutdown; their records are resent after restart")
				e.reqCancel()
				abandoned = true
			}
			if !e.now().Before(deadline) {
				abandoned = true // nothing new goes out after the deadline
			}
		}
	}
	e.finalErr = e.commit()
	e.publish(e.now(), true)
	e.log.Info().Int64("sent", e.sent).Int64("resent", e.resent).Int64("lost", e.lost).
		Dur("drain_ms", e.now().Sub(start)).Msg("forwarder stopped")
}

// commit stores every lane's watermark that moved.
func (e *engine) commit() error {
	var errs []error
	for _, l := range e.order {
		if l.sh == nil {
			continue
		}
		w := l.watermark()
		if (l.stored && w <= l.committed) || (!l.stored && w == 0) {
			continue
		}
		if err := e.f.ckpt.Commit(e.cfg.Stream, e.f.consumer, l.id, w); err != nil {
			errs = append(errs, err)
			continue
		}
		l.committed, l.stored = w, true
	}
	err := errors.Join(errs...)
	if err != nil && (e.lastCommitErr.IsZero() || e.now().Sub(e.lastCommitErr) > time.Minute) {
		e.lastCommitErr = e.now()
		e.log.Error().Err(err).Msg("cannot commit forwarder checkpoint; retrying (a restart now would resend more)")
	}
	if err == nil {
		e.lastCommitErr = time.Time{}
	}
	return err
}
