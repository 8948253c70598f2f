package consumer

import (
	"context"
	"fmt"
)

// setup registers the consumer if needed, decides where each shard starts
// (checkpoints, or From), and reads the shard list.
func (r *run) setup(ctx context.Context) error {
	c := r.c
	cks, err := c.checkpoints(ctx)
	if err != nil {
		return err
	}
	had := checkpointed(cks)
	// From decides every shard's start unless checkpoints do. Starting at
	// the trim horizon needs no position, except to reset checkpoints.
	fromAll := c.cfg.Ephemeral || c.cfg.IgnoreCheckpoints || len(had) == 0
	needStarts := fromAll && (c.cfg.From != FromTrimHorizon || (c.cfg.IgnoreCheckpoints && !c.cfg.Ephemeral))
	var snap []gatewayShardWire
	if needStarts || c.cfg.StopAtEnd {
		gw, err := c.cl.DescribeGateway(ctx, c.cfg.Stream)
		if err != nil {
			return fmt.Errorf("consumer: describe the shards of %s: %w", c.cfg.Stream, err)
		}
		snap = gw.Streams[0].Shards
	}
	var starts map[string]uint64
	if needStarts {
		if starts, err = c.pinStarts(ctx, snap, had); err != nil {
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
	if fromAll {
		for id, pos := range starts {
			if s := c.shards[id]; s != nil {
				s.startAt(pos)
			}
		}
	} else {
		c.applyCheckpoints(cks)
	}
	if c.cfg.StopAtEnd {
		c.applyTargets(snap)
	}
	for _, s := range c.shards {
		if s.done() {
			s.phase = phaseFinished
		}
	}
	return nil
}

// checkpoints registers the consumer if it is not yet and returns its
// checkpoints; an Ephemeral consumer has none.
func (c *Consumer) checkpoints(ctx context.Context) ([]checkpointWire, error) {
	if c.cfg.Ephemeral {
		return nil, nil
	}
	if err := c.cl.DescribeStreamConsumer(ctx, c.cfg.Stream, c.cfg.Name); codeOf(err) == codeNotFound {
		if err := c.cl.RegisterStreamConsumer(ctx, c.cfg.Stream, c.cfg.Name); err != nil && codeOf(err) != codeInUse {
			return nil, fmt.Errorf("consumer: register %s on %s: %w", c.cfg.Name, c.cfg.Stream, err)
		}
		c.log.Info().Str("stream", c.cfg.Stream).Str("consumer", c.cfg.Name).Msg("registered consumer")
	} else if err != nil {
		return nil, fmt.Errorf("consumer: describe %s on %s: %w", c.cfg.Name, c.cfg.Stream, err)
	}
	cks, err := c.cl.GetCheckpoints(ctx, c.cfg.Stream, c.cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("consumer: read checkpoints: %w", err)
	}
	return cks, nil
}

// checkpointed names the shards that have a checkpoint.
func checkpointed(cks []checkpointWire) map[string]bool {
	had := map[string]bool{}
	for _, ck := range cks {
		if ck.Status != "NONE" {
			had[ck.ShardId] = true
		}
	}
	return had
}

// pinStarts returns the position From means in each shard of snap, and
// checkpoints those positions unless the consumer is Ephemeral; had names
// the shards with a checkpoint.
func (c *Consumer) pinStarts(ctx context.Context, snap []gatewayShardWire, had map[string]bool) (map[string]uint64, error) {
	starts := map[string]uint64{}
	for _, w := range snap {
		rng, ok := rangeOf(w)
		if !ok {
			return nil, fmt.Errorf("consumer: DescribeGateway sent bad sequence numbers for %s", w.ShardId)
		}
		pos := c.startOf(rng)
		if !c.cfg.Ephemeral {
			if pos < rng.start && !had[w.ShardId] {
				continue // the shard's start: the default, nothing to pin
			}
			// Pin it now, so that a restart before the first record
			// (or a shard this run never reaches) resumes here.
			if err := c.cl.CommitCheckpoint(ctx, c.cfg.Stream, c.cfg.Name, w.ShardId, formatSeq(w.ShardId, pos)); err != nil {
				return nil, fmt.Errorf("consumer: checkpoint the start of %s: %w", w.ShardId, err)
			}
		}
		starts[w.ShardId] = pos
	}
	return starts, nil
}

// applyTargets sets StopAtEnd's target in each shard of snap, the
// shards as the run started: their last record then; c.mu is held.
func (c *Consumer) applyTargets(snap []gatewayShardWire) {
	for _, w := range snap {
		s := c.shards[w.ShardId]
		rng, ok := rangeOf(w)
		if s == nil || !ok {
			continue
		}
		s.inSnapshot, s.stopAt = true, rng.last
		if rng.last < rng.trim || s.caughtUp() {
			s.phase = phaseFinished // nothing stored, or all of it processed
		}
	}
}

// applyCheckpoints sets each shard's position from the consumer's
// checkpoints; c.mu is held.
func (c *Consumer) applyCheckpoints(cks []checkpointWire) {
	for _, ck := range cks {
		s := c.shards[ck.ShardId]
		if s == nil || ck.Status == "NONE" {
			continue
		}
		seq, ok := parseSeq(ck.SequenceNumber)
		if !ok {
			continue
		}
		s.startAt(seq)
		if ck.Status == statusTrimmed {
			s.mu.Lock()
			s.trimStart = true
			s.mu.Unlock()
			c.log.Warn().Str("stream", c.cfg.Stream).Str("consumer", c.cfg.Name).Str("shard", ck.ShardId).
				Uint64("records_lost", ck.RecordsLost).Msg("retention deleted records this consumer had not read; continuing at the trim horizon")
		}
	}
}

// seqRange is what a shard holds: records trim..last (none if last <
// trim), numbered from start.
type seqRange struct{ start, trim, last uint64 }

func rangeOf(w gatewayShardWire) (seqRange, bool) {
	var r seqRange
	var ok bool
	if r.start, ok = parseSeq(w.StartingSequenceNumber); !ok || r.start == 0 {
		return r, false
	}
	if r.trim, ok = parseSeq(w.TrimHorizonSequenceNumber); !ok {
		return r, false
	}
	r.last = r.start - 1
	if w.LastSequenceNumber != "" {
		if r.last, ok = parseSeq(w.LastSequenceNumber); !ok {
			return r, false
		}
	}
	r.trim = max(r.start, min(r.trim, r.last+1))
	return r, true
}

// startOf is the position (the record before the first to deliver) that
// From means in a shard holding rng.
func (c *Consumer) startOf(rng seqRange) uint64 {
	switch {
	case c.cfg.From == FromLatest:
		return rng.last
	case c.fromIsSeq:
		// The first record >= fromSeq, clamped to what is stored.
		return min(max(c.fromSeq, rng.trim)-1, rng.last)
	default:
		return rng.trim - 1
	}
}
