package forwarder

import (
	"context"
	"fmt"
	"time"
)

// dispatch sends batches while there is room in flight and something is
// due; it returns when to look again (zero: on the next event).
func (e *engine) dispatch(now time.Time) time.Time {
	for e.inflight < e.cfg.MaxInFlight {
		if e.uncommitted {
			e.up.idle()
			return e.nextCommit
		}
		if e.paused != nil {
			if e.probing {
				e.up.idle()
				return time.Time{}
			}
			if now.Before(e.probeAt) {
				e.up.idle()
				return e.probeAt
			}
		}
		if now.Before(e.gNotBefore) {
			e.up.idle()
			return e.gNotBefore
		}
		linger := e.cfg.Linger.D()
		if e.plan.lim.linger > 0 {
			linger = e.plan.lim.linger
		}
		if e.draining {
			linger = 0
		}
		ok, at := e.plan.due(now, linger)
		if !ok {
			e.up.idle()
			return at
		}
		budget := e.plan.lim.maxBatchBytes
		if !e.plan.lim.selfMetered {
			if w := e.bucket.wait(now); w > 0 {
				e.up.idle()
				return now.Add(w)
			}
			if ok, at := e.up.acquire(now); !ok {
				return at
			}
			if rate := e.cfg.MaxBytesPerSec.Bytes(); rate > 0 {
				budget = int(max(1, rate/2)) // half a second's worth keeps the link smooth
			}
			if e.up != nil {
				budget = min(budget, e.up.budget())
			}
		}
		b := e.plan.build(now, budget)
		if b == nil {
			continue // every ready key turned out to be backing off
		}
		if !e.plan.lim.selfMetered {
			e.bucket.take(b.bytes, now)
			e.up.take(b.bytes, now)
		}
		if e.paused != nil {
			e.probing = true
			e.log.Debug().Str("code", e.paused.code).Msg("probing upstream")
		}
		e.send(b)
	}
	e.up.idle()
	return time.Time{}
}

func (e *engine) send(b *batch) {
	resent := 0
	for _, it := range b.items {
		if it.sends > 1 {
			resent += len(it.entries)
		}
	}
	e.resent += int64(resent)
	e.f.metrics.batch.Observe(float64(b.records()))
	e.inflight++
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		timeout := e.cfg.RequestTimeout.D()
		if e.plan.lim.timeout > 0 {
			timeout = e.plan.lim.timeout
		}
		ctx, cancel := context.WithTimeout(e.reqCtx, timeout)
		start := time.Now()
		out, err := e.sink.send(ctx, b)
		e.f.metrics.latency.Observe(time.Since(start).Seconds())
		cancel()
		e.results <- result{b: b, out: out, err: err}
	}()
}

// handle applies one batch's outcome.
func (e *engine) handle(r result, now time.Time) {
	e.inflight--
	err := r.err
	if err == nil && len(r.out.res) != len(r.b.items) {
		err = fmt.Errorf("%w: %d results for %d items", ErrBadResponse, len(r.out.res), len(r.b.items))
	}
	if err != nil {
		e.plan.failAll(r.b, now)
		if e.reqCtx.Err() != nil {
			return // abandoned at shutdown
		}
		fl := e.sink.classify(err)
		e.lastErr = fl.code + ": " + fl.msg
		if fl.kind == permanent {
			e.pause(fl, now)
			return
		}
		if e.paused != nil {
			// A probe that failed differently: stay paused, probe again.
			e.probing = false
			e.probeAt = now.Add(max(e.probeDelay(), fl.retryAfter))
			return
		}
		e.gFails++
		d := max(e.bo.Delay(e.gFails-1), fl.retryAfter)
		e.gNotBefore = now.Add(d)
		if e.gFails == 1 || now.Sub(e.lastWarn) > 10*time.Second {
			e.lastWarn = now
			e.log.Warn().Str("code", fl.code).Str("error", fl.msg).Int("attempt", e.gFails).
				Dur("retry_in_ms", d).Int("records", r.b.records()).Msg("send failed; retrying")
		}
		return
	}
	if e.gFails > 0 {
		e.log.Info().Int("failed_requests", e.gFails).Msg("upstream accepting requests again")
		e.gFails, e.gNotBefore = 0, time.Time{}
	}
	if e.paused != nil {
		e.log.Info().Str("was", e.paused.code).Msg("upstream problem fixed; forwarding resumed")
		e.paused, e.pauseFails = nil, 0
	}
	e.probing = false
	if r.out.lastErr != "" {
		e.lastErr = r.out.lastErr
	}
	c := e.plan.complete(r.b, r.out.res, now)
	for _, ent := range c.acked {
		ent.lane.ack(ent)
		e.bufferedBytes -= len(ent.payload)
	}
	if e.draining && len(c.acked) > 0 {
		e.plan.rewake(now) // higher acknowledgements let more gaps be filled
	}
	if e.plan.lim.byShard && len(c.acked) > 0 {
		// An object is named after its run's first record, and a restart
		// cuts runs from the checkpoint on: were the next run of a shard
		// sent before this one's end is checkpointed, a crash would make
		// the restarted engine cut a longer run from this one's start,
		// leaving the next run's object behind with copies of its records.
		// So the checkpoint goes first; if it cannot be written, no run
		// goes out until a later commit succeeds.
		e.uncommitted = e.commit() != nil
	}
	e.buffered -= len(c.acked)
	e.sent += int64(len(c.acked))
	if c.failed > 0 {
		e.log.Debug().Int("failed", c.failed).Int("throttled", c.throttled).Int("acked", len(c.acked)).
			Msg("batch partly failed; resending only the failed entries")
	}
	if r.out.perm != nil {
		e.pause(*r.out.perm, now)
	}
}

func (e *engine) probeDelay() time.Duration {
	return min(e.opts.ProbeInterval, time.Second<<min(e.pauseFails, 10))
}

// pause stops sending after a permanent failure; one request probes the
// upstream now and then, and forwarding resumes when it is accepted.
func (e *engine) pause(fl failure, now time.Time) {
	first := e.paused == nil || e.paused.code != fl.code
	e.paused = &fl
	e.probing = false
	d := e.probeDelay()
	e.pauseFails++
	e.probeAt = now.Add(d)
	e.lastErr = fl.code + ": " + fl.msg
	if first {
		e.log.Error().Str("code", fl.code).Str("error", fl.msg).Str("fix", fl.fix).Dur("probe_in_ms", d).
			Msgf("forwarding paused, nothing is dropped: %s: %s", fl.code, fl.fix)
	} else {
		e.log.Debug().Str("code", fl.code).Dur("probe_in_ms", d).Msg("still paused")
	}
}
