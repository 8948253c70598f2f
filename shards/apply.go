package shards

import (
	"errors"
	"fmt"

	"github.com/weir-gateway/weir/internal/conf"
)

// Diff classifies the differences between the running stream c and next;
// paths are relative to the stream. The limits (max_record_size, rate,
// retention, max_bytes, on_full) are live; segment_size is given to each
// shard's log when it opens; the shard count is only used to create a
// stream, so an existing stream is resharded through the API instead.
func (c StreamConfig) Diff(next StreamConfig) conf.Changes {
	var cs conf.Changes
	if c.Shards != next.Shards {
		cs.Add(conf.Kept, "shards", c.Shards, next.Shards,
			"the count only sizes a new stream; reshard this one with UpdateShardCount, e.g. aws kinesis update-shard-count")
	}
	conf.Compare(&cs, conf.Live, "max_record_size", c.MaxRecordSize, next.MaxRecordSize)
	conf.Compare(&cs, conf.Live, "retention", c.Retention, next.Retention)
	conf.Compare(&cs, conf.Live, "max_bytes", c.MaxBytes, next.MaxBytes)
	conf.Compare(&cs, conf.Live, "on_full", c.OnFull, next.OnFull)
	conf.DiffFields(&cs, conf.Live, "rate", c.Rate, next.Rate)
	conf.Compare(&cs, conf.Live, "mode", c.Mode, next.Mode)
	conf.DiffFields(&cs, conf.Live, "on_demand", c.OnDemand, next.OnDemand)
	// Every other key (segment_size) is given to a shard's log when it
	// opens: a restart.
	rest := c
	rest.Shards, rest.MaxRecordSize, rest.Retention, rest.MaxBytes, rest.OnFull, rest.Rate =
		next.Shards, next.MaxRecordSize, next.Retention, next.MaxBytes, next.OnFull, next.Rate
	rest.Mode, rest.OnDemand = next.Mode, next.OnDemand
	conf.DiffFields(&cs, conf.Restart, "", rest, next)
	return cs
}

// DiffStreams lists what differs between the declared streams old and
// next, matched by name; paths are relative to `streams` and index next
// (a removed stream is reported at `streams` itself). A new stream is
// created live; a stream no longer declared is kept with its data.
func DiffStreams(old, next []StreamConfig) conf.Changes {
	var cs conf.Changes
	byName := make(map[string]StreamConfig, len(old))
	for _, c := range old {
		byName[c.Name] = c
	}
	inNext := make(map[string]bool, len(next))
	for i, c := range next {
		inNext[c.Name] = true
		p := conf.Index("", i)
		prev, ok := byName[c.Name]
		if !ok {
			cs.Add(conf.Live, p, nil, fmt.Sprintf("%s (%d shards)", c.Name, c.Shards), "")
			continue
		}
		cs.Nest(p, prev.WithDefaults().Diff(c.WithDefaults()))
	}
	for _, c := range old {
		if !inNext[c.Name] {
			cs.Add(conf.Kept, "", c.Name, nil,
				"no longer declared: the stream and its data stay; delete it with DeleteStream, e.g. aws kinesis delete-stream")
		}
	}
	return cs
}

// Apply puts the declared streams of a reloaded configuration into force
// and returns every difference from the running ones (paths relative to
// the file's root), each marked live, restart or kept. Streams new to the
// file are created (or, if they already exist undeclared, configured);
// streams the file no longer names keep running with their data, under
// the settings they had. Limits change under each stream's locks and each
// shard's limiter lock, never under a writer's feet: an append in flight
// finishes under the limits it was admitted with.
//
// Streams are created before anything else changes, so an error (a full
// disk) leaves every existing stream as it was; streams created before
// the error stay, empty and harmless.
func (s *Store) Apply(streams []StreamConfig) (conf.Changes, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	var cs conf.Changes
	cs.Nest("streams", DiffStreams(s.opts.Streams, streams))
	next := make([]StreamConfig, len(streams))
	var existing []*Stream
	for i, c := range streams {
		c = c.WithDefaults()
		next[i] = c
		st, err := s.Stream(c.Name)
		if errors.Is(err, ErrStreamNotFound) {
			if _, err := s.createStream(c, true); err != nil {
				return cs, err
			}
			continue
		}
		if err != nil {
			return cs, err
		}
		existing = append(existing, st)
	}
	prev := make(map[string]StreamConfig, len(s.opts.Streams))
	for _, c := range s.opts.Streams {
		prev[c.Name] = c
	}
	for _, st := range existing {
		for _, c := range next {
			if c.Name != st.name {
				continue
			}
			st.applyLimits(c)
			// A mode the file did not change stays as UpdateStreamMode
			// may have set it.
			if p, ok := prev[c.Name]; !ok || p.Mode != c.Mode {
				if err := st.applyDeclaredMode(c); err != nil {
					return cs, err
				}
			}
		}
	}
	s.opts.Streams = next
	return cs, nil
}

// applyLimits sets the stream's live settings from c. It holds reshardMu
// so that a shard born of a concurrent split gets the new rate too.
func (st *Stream) applyLimits(c StreamConfig) {
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	st.mu.Lock()
	cur := st.cfg
	cur.MaxRecordSize, cur.Retention, cur.MaxBytes, cur.OnFull = c.MaxRecordSize, c.Retention, c.MaxBytes, c.OnFull
	rateChanged := cur.Rate != c.Rate
	cur.Rate = c.Rate
	cur.Mode, cur.OnDemand = c.Mode, c.OnDemand
	st.cfg = cur
	shards := make([]*Shard, 0, len(st.shards))
	for _, sh := range st.shards {
		shards = append(shards, sh)
	}
	st.mu.Unlock()
	if rateChanged {
		now := st.store.now()
		for _, sh := range shards {
			sh.limiter.set(c.Rate, now)
		}
	}
}
