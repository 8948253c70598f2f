package forwarder

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// dispatch sends batches while there is room in flight and something is
// due; it returns when to look again (zero: on the next event).
func (e *engine) dispatch(now time.Time) time.Time {
	for e.inflight < e.cfg.MaxInFlight {
		if e.paused != nil {
			if e.probing {
				return time.Time{}
			}
			if now.Before(e.probeAt) {
				return e.probeAt
			}
		}
		if now.Before(e.gNotBefore) {
			return e.gNotBefore
		}
		linger := e.cfg.Linger.D()
		if e.draining {
			linger = 0
		}
		ok, at := e.plan.due(now, linger)
		if !ok {
			return at
		}
		if w := e.bucket.wait(now); w > 0 {
			return now.Add(w)
		}
		budget := maxBatchBytes
		if rate := e.cfg.MaxBytesPerSec.Bytes(); rate > 0 {
			budget = int(max(1, rate/2)) // half a second's worth keeps the link smooth
		}
		b := e.plan.build(now, budget)
		if b == nil {
			continue // every ready key turned out to be backing off
		}
		e.bucket.take(b.bytes, now)
		if e.paused != nil {
			e.probing = true
			e.log.Debug().Str("code", e.paused.code).Msg("probing upstream")
		}
		e.send(b)
	}
	return time.Time{}
}

func (e *engine) send(b *batch) {
	recs := make([]types.PutRecordsRequestEntry, len(b.items))
	resent := 0
	for i, it := range b.items {
		recs[i] = types.PutRecordsRequestEntry{Data: it.data, PartitionKey: aws.String(it.ks.key)}
		if it.sends > 1 {
			resent += len(it.entries)
		}
	}
	e.resent += int64(resent)
	e.f.metrics.batch.Observe(float64(b.records()))
	in := &kinesis.PutRecordsInput{StreamName: aws.String(e.cfg.TargetStream), Records: recs}
	e.inflight++
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(e.reqCtx, e.cfg.RequestTimeout.D())
		start := time.Now()
		out, err := e.f.client.PutRecords(ctx, in)
		e.f.metrics.latency.Observe(time.Since(start).Seconds())
		cancel()
		e.results <- result{b: b, out: out, err: err}
	}()
}

// handle applies one PutRecords outcome.
func (e *engine) handle(r result, now time.Time) {
	e.inflight--
	err := r.err
	if err == nil && (r.out == nil || len(r.out.Records) != len(r.b.items)) {
		n := 0
		if r.out != nil {
			n = len(r.out.Records)
		}
		err = fmt.Errorf("%w: %d entries for %d records", ErrBadResponse, n, len(r.b.items))
	}
	if err != nil {
		e.plan.failAll(r.b, now)
		if e.reqCtx.Err() != nil {
			return // abandoned at shutdown
		}
		fl := classify(err)
		e.lastErr = fl.code + ": " + fl.msg
		if fl.kind == permanent {
			e.pause(fl, now)
			return
		}
		if e.paused != nil {
			// A probe that failed differently: stay paused, probe again.
			e.probing = false
			e.probeAt = now.Add(e.probeDelay())
			return
		}
		e.gFails++
		d := e.bo.Delay(e.gFails - 1)
		e.gNotBefore = now.Add(d)
		if e.gFails == 1 || now.Sub(e.lastWarn) > 10*time.Second {
			e.lastWarn = now
			e.log.Warn().Str("code", fl.code).Str("error", fl.msg).Int("attempt", e.gFails).
				Dur("retry_in_ms", d).Int("records", r.b.records()).Msg("PutRecords failed; retrying")
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
	res := make([]entryResult, len(r.b.items))
	var perm *failure
	for i, rec := range r.out.Records {
		code := aws.ToString(rec.ErrorCode)
		res[i] = entryKind(code)
		if code == "" {
			continue
		}
		e.lastErr = code + ": " + aws.ToString(rec.ErrorMessage)
		if fix, ok := permanentCodes[code]; ok && perm == nil {
			perm = &failure{kind: permanent, code: code, msg: aws.ToString(rec.ErrorMessage), fix: fix}
		}
	}
	c := e.plan.complete(r.b, res, now)
	for _, ent := range c.acked {
		ent.lane.ack(ent)
		e.bufferedBytes -= len(ent.payload)
	}
	if e.draining && len(c.acked) > 0 {
		e.plan.rewake(now) // higher acknowledgements let more gaps be filled
	}
	e.buffered -= len(c.acked)
	e.sent += int64(len(c.acked))
	if c.failed > 0 {
		e.log.Debug().Int("failed", c.failed).Int("throttled", c.throttled).Int("acked", len(c.acked)).
			Msg("PutRecords partly failed; resending only the failed entries")
	}
	if perm != nil {
		e.pause(*perm, now)
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
