package consumer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// run is one call of Run: a loop that owns the shard graph and starts one
// reader per shard whose parents are finished, so that a key's records are
// delivered in order across splits and merges.
type run struct {
	c      *Consumer
	h      Handler
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	events chan event
}

// event is a reader's end: the shard reached its end (ended), or err.
type event struct {
	shard string
	ended bool
	err   error
}

const (
	codeNotFound       = "ResourceNotFoundException"
	codeInUse          = "ResourceInUseException"
	codeExpiredIter    = "ExpiredIteratorException"
	codeInvalidArg     = "InvalidArgumentException"
	statusTrimmed      = "TRIMMED"
	statusOK           = "OK"
	requestGrace       = 30 * time.Second
	setupRetryLogEvery = 10
)

// retry runs f until it succeeds, fails permanently, or ctx ends.
func (r *run) retry(what string, f func(ctx context.Context) error) error {
	var bo backoff
	for attempt := 1; ; attempt++ {
		err := f(r.ctx)
		if err == nil {
			return nil
		}
		if !transient(r.ctx, err) {
			return err
		}
		if attempt%setupRetryLogEvery == 1 {
			r.c.log.Warn().Err(err).Str("stream", r.c.cfg.Stream).Msgf("%s failed; retrying", what)
		}
		if err := bo.wait(r.ctx); err != nil {
			return err
		}
	}
}

func (r *run) loop() error {
	if err := r.retry("setup", r.setup); err != nil {
		return r.exitErr(err)
	}
	r.schedule()
	var tick <-chan time.Time
	if r.c.cfg.CheckpointInterval > 0 {
		t := time.NewTicker(r.c.cfg.CheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ev := <-r.events:
			if err := r.handle(ev); err != nil {
				return r.exitErr(err)
			}
		case <-tick:
			if err := r.c.Checkpoint(r.ctx); err != nil && r.ctx.Err() == nil {
				r.c.log.Warn().Err(err).Msg("periodic checkpoint failed; will retry")
			}
		case <-r.ctx.Done():
			return r.exitErr(context.Cause(r.ctx))
		}
	}
}

// exitErr turns the reason the loop ended into Run's result: stopping by
// ctx or ErrStop is a clean end.
func (r *run) exitErr(err error) error {
	if err == nil || errors.Is(err, ErrStop) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

func (r *run) handle(ev event) error {
	r.c.mu.Lock()
	s := r.c.shards[ev.shard]
	r.c.mu.Unlock()
	switch {
	case ev.err != nil:
		if r.ctx.Err() != nil {
			return context.Cause(r.ctx)
		}
		return ev.err
	case !ev.ended:
		// The reader stopped because ctx ended; the ctx case will follow.
		s.phase = phaseIdle
		return nil
	}
	// A shard ended: learn its final sequence number and its children.
	if err := r.retry("list shards", r.discover); err != nil {
		return err
	}
	s.phase = phaseFinished
	s.mu.Lock()
	closed, gone := s.closed, s.gone
	s.mu.Unlock()
	if closed && !gone {
		s.finish()
		if err := r.c.commit(r.ctx, s); err != nil && r.ctx.Err() == nil {
			// The periodic checkpoint retries it; children need not wait.
			r.c.log.Warn().Err(err).Str("shard", s.id).Msg("could not checkpoint the end of a shard")
		}
	}
	r.c.log.Debug().Str("stream", r.c.cfg.Stream).Str("shard", s.id).Msg("shard finished")
	r.schedule()
	return nil
}

// setup registers the consumer if needed, reads its checkpoints and the
// shard list.
func (r *run) setup(ctx context.Context) error {
	c := r.c
	if err := c.cl.describeConsumer(ctx, c.cfg.Stream, c.cfg.Name); codeOf(err) == codeNotFound {
		if err := c.cl.registerConsumer(ctx, c.cfg.Stream, c.cfg.Name); err != nil && codeOf(err) != codeInUse {
			return fmt.Errorf("consumer: register %s on %s: %w", c.cfg.Name, c.cfg.Stream, err)
		}
		c.log.Info().Str("stream", c.cfg.Stream).Str("consumer", c.cfg.Name).Msg("registered consumer")
	} else if err != nil {
		return fmt.Errorf("consumer: describe %s on %s: %w", c.cfg.Name, c.cfg.Stream, err)
	}
	cks, err := c.cl.getCheckpoints(ctx, c.cfg.Stream, c.cfg.Name)
	if err != nil {
		return fmt.Errorf("consumer: read checkpoints: %w", err)
	}
	fresh := true
	for _, ck := range cks {
		if ck.Status != "NONE" {
			fresh = false
		}
	}
	if fresh && c.cfg.From == FromLatest {
		// Pin "latest" now, so that a restart before the first record
		// resumes here instead of at a later tip.
		for _, ck := range cks {
			seq := ck.LastSequenceNumber
			if ck.Closed {
				seq = ck.EndingSequenceNumber
			}
			if seq == "" {
				continue // empty shard: its start is the tip
			}
			if err := c.cl.commit(ctx, c.cfg.Stream, c.cfg.Name, ck.ShardId, seq); err != nil {
				return fmt.Errorf("consumer: checkpoint the tip of %s: %w", ck.ShardId, err)
			}
		}
		if cks, err = c.cl.getCheckpoints(ctx, c.cfg.Stream, c.cfg.Name); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.shards = map[string]*shardState{}
	c.mu.Unlock()
	if err := r.discover(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ck := range cks {
		s := c.shards[ck.ShardId]
		if s == nil || ck.Status == "NONE" {
			continue
		}
		seq, ok := parseSeq(ck.SequenceNumber)
		if !ok {
			continue
		}
		s.mu.Lock()
		s.delivered, s.hasDelivered = seq, true
		s.committedSeq, s.hasCommitted = seq, true
		if ck.Status == statusTrimmed {
			s.trimStart = true
			c.log.Warn().Str("stream", c.cfg.Stream).Str("consumer", c.cfg.Name).Str("shard", ck.ShardId).
				Uint64("records_lost", ck.RecordsLost).Msg("retention deleted records this consumer had not read; continuing at the trim horizon")
		}
		s.mu.Unlock()
	}
	for _, s := range c.shards {
		if s.done() {
			s.phase = phaseFinished
		}
	}
	return nil
}

// discover merges the gateway's shard list into the graph.
func (r *run) discover(ctx context.Context) error {
	list, err := r.c.cl.listShards(ctx, r.c.cfg.Stream)
	if err != nil {
		return fmt.Errorf("consumer: list shards of %s: %w", r.c.cfg.Stream, err)
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	listed := make(map[string]bool, len(list))
	for _, w := range list {
		listed[w.ShardId] = true
		s := r.c.shards[w.ShardId]
		if s == nil {
			s = &shardState{id: w.ShardId}
			for _, p := range []string{w.ParentShardId, w.AdjacentParentShardId} {
				if p != "" {
					s.parents = append(s.parents, p)
				}
			}
			r.c.shards[w.ShardId] = s
		}
		if end, ok := parseSeq(w.SequenceNumberRange.EndingSequenceNumber); ok {
			s.mu.Lock()
			s.closed, s.endSeq = true, end
			s.mu.Unlock()
		}
	}
	for id, s := range r.c.shards {
		if !listed[id] {
			// Expired by retention: nothing left to read or commit.
			s.mu.Lock()
			s.gone = true
			s.mu.Unlock()
		}
	}
	return nil
}

// schedule starts a reader for every idle shard whose parents are finished
// or gone (expired parents were read, or can no longer be).
func (r *run) schedule() {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	for _, s := range r.c.shards {
		if s.phase != phaseIdle {
			continue
		}
		ready := true
		for _, p := range s.parents {
			if ps, ok := r.c.shards[p]; ok && ps.phase != phaseFinished {
				ready = false
			}
		}
		if !ready {
			continue
		}
		s.phase = phaseReading
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			ended, err := r.read(s)
			select {
			case r.events <- event{shard: s.id, ended: ended, err: err}:
			case <-r.ctx.Done():
			}
		}()
	}
}

// read delivers one shard from its position to its end (ended=true), or
// until ctx ends or a permanent error.
func (r *run) read(s *shardState) (ended bool, err error) {
	c := r.c
	ctx := r.ctx
	wait := c.cfg.WaitMillis
	var bo backoff
	iter := ""
	for ctx.Err() == nil {
		if iter == "" {
			typ, seq := s.position()
			iter, err = c.cl.shardIterator(ctx, c.cfg.Stream, s.id, typ, seq)
			if err != nil {
				c.log.Debug().Err(err).Str("shard", s.id).Msg("shard iterator failed")
				iter = ""
				if !transient(ctx, err) {
					if ctx.Err() != nil {
						return false, nil
					}
					if codeOf(err) == codeNotFound {
						return r.notFound(s, err)
					}
					return false, fmt.Errorf("consumer: shard iterator for %s: %w", s.id, err)
				}
				if bo.wait(ctx) != nil {
					return false, nil
				}
				continue
			}
		}
		rctx, cancel := context.WithTimeout(ctx, time.Duration(wait)*time.Millisecond+requestGrace)
		out, err := c.cl.longPoll(rctx, iter, wait, c.cfg.Limit)
		cancel()
		if err != nil {
			c.log.Debug().Err(err).Str("shard", s.id).Msg("long-poll failed")
			switch code := codeOf(err); {
			case ctx.Err() != nil:
				return false, nil
			case code == codeExpiredIter || code == codeInvalidArg:
				// Old, or signed by a gateway with another key: get a new
				// one at the same position.
				iter = ""
				continue
			case transient(ctx, err):
				if bo.wait(ctx) != nil {
					return false, nil
				}
				continue
			case code == codeNotFound:
				return r.notFound(s, err)
			default:
				return false, fmt.Errorf("consumer: read %s: %w", s.id, err)
			}
		}
		bo.reset()
		for i := range out.Records {
			if ctx.Err() != nil {
				return false, nil
			}
			rec, ok := c.record(s.id, &out.Records[i])
			if !ok {
				return false, fmt.Errorf("consumer: %s sent sequence number %q", s.id, out.Records[i].SequenceNumber)
			}
			if err := r.h(ctx, rec); err != nil {
				if errors.Is(err, ErrStop) {
					r.cancel(ErrStop)
					return false, nil
				}
				return false, fmt.Errorf("consumer: handler failed on %s/%s: %w", s.id, rec.Seq, err)
			}
			gap, uncommitted := s.deliver(rec.SeqNum)
			if gap > 0 {
				c.log.Warn().Str("stream", c.cfg.Stream).Str("shard", s.id).Uint64("records_lost", gap).
					Msg("retention deleted records before this consumer read them")
			}
			if c.cfg.CheckpointEvery > 0 && uncommitted >= int64(c.cfg.CheckpointEvery) {
				if err := c.commit(ctx, s); err != nil && ctx.Err() == nil {
					c.log.Warn().Err(err).Str("shard", s.id).Msg("checkpoint failed; will retry")
				}
			}
		}
		if out.NextShardIterator == nil {
			return true, nil
		}
		iter = *out.NextShardIterator
	}
	return false, nil
}

// notFound decides what a ResourceNotFoundException on a shard means: the
// shard expired (retention removed the closed shard: it is over) or the
// stream was deleted (Run must end).
func (r *run) notFound(s *shardState, cause error) (bool, error) {
	list, err := r.c.cl.listShards(r.ctx, r.c.cfg.Stream)
	if err != nil {
		return false, fmt.Errorf("consumer: read %s: %w", s.id, err)
	}
	for _, w := range list {
		if w.ShardId == s.id {
			return false, fmt.Errorf("consumer: read %s: %w", s.id, cause)
		}
	}
	r.c.log.Warn().Str("stream", r.c.cfg.Stream).Str("shard", s.id).Msg("shard expired before it was read to its end")
	return true, nil
}

func (c *Consumer) record(shard string, w *recordWire) (Record, bool) {
	seq, ok := parseSeq(w.SequenceNumber)
	if !ok {
		return Record{}, false
	}
	return Record{
		Stream: c.cfg.Stream, ShardID: shard, Seq: w.SequenceNumber, SeqNum: seq,
		Key: w.PartitionKey, Data: w.Data,
		Arrival: time.UnixMilli(int64(math.Round(w.ApproximateArrivalTimestamp * 1000))),
		Topic:   w.Topic, ClientID: w.ClientId, QoS: byte(w.QoS), Props: w.UserProperties,
	}, true
}
