package consumer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/weir-gateway/weir/internal/backoff"
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

// event is a reader's end: why it stopped, or err.
type event struct {
	shard string
	end   readEnd
	err   error
}

// readEnd is why a shard's reader returned.
type readEnd int

const (
	endStopped  readEnd = iota // ctx ended (or ErrStop): the shard is not finished
	endShard                   // the shard is closed and read to its end, or expired
	endCaughtUp                // StopAtEnd: everything stored at the start is delivered
)

// errCaughtUp ends the loop when StopAtEnd's work is done.
var errCaughtUp = errors.New("consumer: caught up")

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
	bo := backoff.Retry{Exp: retryDelays}
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
		if err := bo.Wait(r.ctx); err != nil {
			return err
		}
	}
}

func (r *run) loop() error {
	if err := r.retry("setup", r.setup); err != nil {
		return r.exitErr(err)
	}
	if r.complete() {
		return nil
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
	if err == nil || errors.Is(err, ErrStop) || errors.Is(err, errCaughtUp) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
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
	case ev.end == endStopped:
		// The reader stopped because ctx ended; the ctx case will follow.
		s.phase = phaseIdle
		return nil
	case ev.end == endCaughtUp:
		// Not the shard's end: it may have grown (or closed) since the
		// start, and what came later is not delivered, so it must not be
		// finish()ed.
		s.phase = phaseFinished
		r.c.log.Debug().Str("stream", r.c.cfg.Stream).Str("shard", s.id).Msg("shard caught up")
		if r.complete() {
			return errCaughtUp
		}
		r.schedule()
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
	if r.complete() {
		return errCaughtUp
	}
	r.schedule()
	return nil
}

// complete reports whether StopAtEnd's work is done: every shard that
// existed at the start is finished.
func (r *run) complete() bool {
	if !r.c.cfg.StopAtEnd {
		return false
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	for _, s := range r.c.shards {
		if s.inSnapshot && s.phase != phaseFinished {
			return false
		}
	}
	return true
}

// discover merges the gateway's shard list into the graph.
func (r *run) discover(ctx context.Context) error {
	list, err := r.c.cl.ListShards(ctx, r.c.cfg.Stream)
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
// or gone (expired parents were read, or can no longer be); with
// Sequential, for the first such shard by id once no reader runs.
func (r *run) schedule() {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	ids := make([]string, 0, len(r.c.shards))
	for id, s := range r.c.shards {
		if s.phase == phaseReading && r.c.cfg.Sequential {
			return
		}
		ids = append(ids, id)
	}
	sort.Strings(ids) // fixed-width ids: parents sort before their children
	for _, id := range ids {
		s := r.c.shards[id]
		if s.phase != phaseIdle || (r.c.cfg.StopAtEnd && !s.inSnapshot) {
			continue
		}
		ready := true
		for _, p := range s.parents {
			ps, ok := r.c.shards[p]
			// A parent this StopAtEnd run does not read cannot hold
			// its child back.
			if ok && ps.phase != phaseFinished && !(r.c.cfg.StopAtEnd && !ps.inSnapshot) {
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
			end, err := r.read(s)
			select {
			case r.events <- event{shard: s.id, end: end, err: err}:
			case <-r.ctx.Done():
			}
		}()
		if r.c.cfg.Sequential {
			return
		}
	}
}

// read delivers one shard from its position until its end (endShard),
// StopAtEnd's target (endCaughtUp), ctx's end (endStopped) or a permanent
// error.
func (r *run) read(s *shardState) (readEnd, error) {
	sr := &shardReader{r: r, s: s, bo: backoff.Retry{Exp: retryDelays}}
	for r.ctx.Err() == nil {
		if sr.iter == "" {
			typ, seq := s.position()
			iter, err := r.c.cl.GetShardIterator(r.ctx, r.c.cfg.Stream, s.id, typ, seq)
			if err != nil {
				if f := sr.iteratorFailed(err); f != nil {
					return f.end, f.err
				}
				continue
			}
			sr.iter = iter
		}
		out, err := sr.poll()
		if err != nil {
			if f := sr.pollFailed(err); f != nil {
				return f.end, f.err
			}
			continue
		}
		sr.bo.Reset()
		if f := sr.deliver(out.Records); f != nil {
			return f.end, f.err
		}
		if out.NextShardIterator == nil {
			return endShard, nil
		}
		if r.c.cfg.StopAtEnd && len(out.Records) == 0 && out.MillisBehindLatest == 0 {
			// At the tip without reaching the target: retention deleted
			// the records up to it while we read.
			return endCaughtUp, nil
		}
		sr.iter = *out.NextShardIterator
	}
	return endStopped, nil
}

// shardReader is the state of one read.
type shardReader struct {
	r    *run
	s    *shardState
	bo   backoff.Retry
	iter string // "" until GetShardIterator gives one, and again once it is stale
}

// finish is how a read ends: what read returns.
type finish struct {
	end readEnd
	err error
}

var stopped = &finish{end: endStopped}

// iteratorFailed decides what a failed GetShardIterator means: nil to try
// again (after a backoff), or how the read ends.
func (sr *shardReader) iteratorFailed(err error) *finish {
	ctx, s := sr.r.ctx, sr.s
	sr.r.c.log.Debug().Err(err).Str("shard", s.id).Msg("shard iterator failed")
	if !transient(ctx, err) {
		if ctx.Err() != nil {
			return stopped
		}
		if codeOf(err) == codeNotFound {
			return sr.notFound(err)
		}
		return &finish{endStopped, fmt.Errorf("consumer: shard iterator for %s: %w", s.id, err)}
	}
	if sr.bo.Wait(ctx) != nil {
		return stopped
	}
	return nil
}

// poll long-polls the shard at the iterator.
func (sr *shardReader) poll() (recordsWire, error) {
	c := sr.r.c
	wait := c.cfg.WaitMillis
	ctx, cancel := context.WithTimeout(sr.r.ctx, time.Duration(wait)*time.Millisecond+requestGrace)
	defer cancel()
	return c.cl.LongPoll(ctx, sr.iter, wait, c.cfg.Limit)
}

// pollFailed decides what a failed long poll means: nil to try again
// (after a backoff, or with a new iterator), or how the read ends.
func (sr *shardReader) pollFailed(err error) *finish {
	ctx, s := sr.r.ctx, sr.s
	sr.r.c.log.Debug().Err(err).Str("shard", s.id).Msg("long-poll failed")
	switch code := codeOf(err); {
	case ctx.Err() != nil:
		return stopped
	case code == codeExpiredIter || code == codeInvalidArg:
		// Old, or signed by a gateway with another key: get a new
		// one at the same position.
		sr.iter = ""
		return nil
	case transient(ctx, err):
		if sr.bo.Wait(ctx) != nil {
			return stopped
		}
		return nil
	case code == codeNotFound:
		return sr.notFound(err)
	default:
		return &finish{endStopped, fmt.Errorf("consumer: read %s: %w", s.id, err)}
	}
}

func (sr *shardReader) notFound(err error) *finish {
	end, err := sr.r.notFound(sr.s, err)
	return &finish{end, err}
}

// deliver hands records to the handler in order, checkpointing every
// CheckpointEvery; it returns how the read ends if it must.
func (sr *shardReader) deliver(recs []recordWire) *finish {
	r, c, ctx, s := sr.r, sr.r.c, sr.r.ctx, sr.s
	stopAt, stopping := s.stopAt, c.cfg.StopAtEnd
	for i := range recs {
		if ctx.Err() != nil {
			return stopped
		}
		rec, ok := c.record(s.id, &recs[i])
		if !ok {
			return &finish{endStopped, fmt.Errorf("consumer: %s sent sequence number %q", s.id, recs[i].SequenceNumber)}
		}
		if stopping && rec.SeqNum > stopAt {
			return &finish{end: endCaughtUp} // appended after the start
		}
		if err := r.h(ctx, rec); err != nil {
			if errors.Is(err, ErrStop) {
				r.cancel(ErrStop)
				return stopped
			}
			return &finish{endStopped, fmt.Errorf("consumer: handler failed on %s/%s: %w", s.id, rec.Seq, err)}
		}
		// A gap in the sequence numbers is no loss: a shard's numbers have
		// the stream's other shards' records between them (as Kinesis's
		// do). Losses are what the gateway counts (GetCheckpoints).
		uncommitted := s.deliver(rec.SeqNum)
		if c.cfg.CheckpointEvery > 0 && uncommitted >= int64(c.cfg.CheckpointEvery) {
			if err := c.commit(ctx, s); err != nil && ctx.Err() == nil {
				c.log.Warn().Err(err).Str("shard", s.id).Msg("checkpoint failed; will retry")
			}
		}
		if stopping && rec.SeqNum >= stopAt {
			return &finish{end: endCaughtUp}
		}
	}
	return nil
}

// notFound decides what a ResourceNotFoundException on a shard means: the
// shard expired (retention removed the closed shard: it is over) or the
// stream was deleted (Run must end).
func (r *run) notFound(s *shardState, cause error) (readEnd, error) {
	list, err := r.c.cl.ListShards(r.ctx, r.c.cfg.Stream)
	if err != nil {
		return endStopped, fmt.Errorf("consumer: read %s: %w", s.id, err)
	}
	for _, w := range list {
		if w.ShardId == s.id {
			return endStopped, fmt.Errorf("consumer: read %s: %w", s.id, cause)
		}
	}
	r.c.log.Warn().Str("stream", r.c.cfg.Stream).Str("shard", s.id).Msg("shard expired before it was read to its end")
	return endShard, nil
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
