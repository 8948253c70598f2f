package shards

import (
	"fmt"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
)

// Capacity modes of a stream: streams[].mode in the file, StreamModeDetails
// (PROVISIONED, ON_DEMAND) in the Kinesis API. A provisioned stream keeps
// the shards it is given; an on-demand stream is split and merged by the
// Autoscaler as its write rate changes.
const (
	ModeProvisioned = "provisioned"
	ModeOnDemand    = "on_demand"
)

// Kinesis' per-shard write limits. An on-demand stream whose rate is
// unlimited in one dimension (rate.records_per_sec or bytes_per_sec: 0)
// is scaled against these instead, so that "a fraction of the limit"
// always means something.
const (
	kinesisShardRecords = 1000
	kinesisShardBytes   = conf.MiB
)

// OnDemandConfig is streams[].on_demand: when the Autoscaler splits and
// merges an on-demand stream's shards. Fractions are of one shard's write
// limit (rate.records_per_sec and rate.bytes_per_sec); see the policy in
// autoscale.go.
type OnDemandConfig struct {
	// SplitAt: a shard whose mean write rate over SplitAfter reaches this
	// fraction of its limit, in records/s or bytes/s, is split.
	SplitAt    float64       `yaml:"split_at"`
	SplitAfter conf.Duration `yaml:"split_after"`
	// MergeAt: two adjacent shards whose combined mean rate over
	// MergeAfter stays below this fraction of one shard's limit, in
	// records/s and bytes/s, are merged.
	MergeAt    float64       `yaml:"merge_at"`
	MergeAfter conf.Duration `yaml:"merge_after"`
	// Cooldown: no merge within this long of any reshard of the stream.
	Cooldown conf.Duration `yaml:"cooldown"`
	// MaxShards bounds the open shards the autoscaler makes; the floor is
	// the count the stream was created (or switched to on-demand) with.
	MaxShards int `yaml:"max_shards"`
}

// Defaults of streams[].on_demand; autoscale.go says why.
const (
	DefaultSplitAt    = 0.8
	DefaultSplitAfter = conf.Duration(30 * time.Second)
	DefaultMergeAt    = 0.3
	DefaultMergeAfter = conf.Duration(5 * time.Minute)
	DefaultCooldown   = conf.Duration(2 * time.Minute)
	DefaultMaxShards  = 64
	// MinScaleWindow bounds split_after and merge_after below: the
	// autoscaler samples once a second.
	MinScaleWindow = conf.Duration(time.Second)
)

// Defaults fills the fields left zero.
func (o *OnDemandConfig) Defaults() {
	if o.SplitAt == 0 {
		o.SplitAt = DefaultSplitAt
	}
	if o.SplitAfter == 0 {
		o.SplitAfter = DefaultSplitAfter
	}
	if o.MergeAt == 0 {
		o.MergeAt = DefaultMergeAt
	}
	if o.MergeAfter == 0 {
		o.MergeAfter = DefaultMergeAfter
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.MaxShards == 0 {
		o.MaxShards = DefaultMaxShards
	}
}

// WithDefaults returns a copy of o with Defaults applied.
func (o OnDemandConfig) WithDefaults() OnDemandConfig {
	o.Defaults()
	return o
}

// Validate checks an OnDemandConfig; paths are relative to it.
func (o OnDemandConfig) Validate() []error {
	var errs conf.ErrorList
	if o.SplitAt <= 0 || o.SplitAt > 1 {
		errs.Add("split_at", "must be a fraction of the shard's rate limit in (0, 1], got %v", o.SplitAt)
	}
	if o.MergeAt <= 0 || o.MergeAt >= 1 {
		errs.Add("merge_at", "must be a fraction of one shard's rate limit in (0, 1), got %v", o.MergeAt)
	} else if o.SplitAt > 0 && o.MergeAt >= o.SplitAt {
		errs.Add("merge_at", "(%v) must be below split_at (%v), or a merged shard would be split again at once", o.MergeAt, o.SplitAt)
	}
	for _, d := range []struct {
		key string
		v   conf.Duration
	}{{"split_after", o.SplitAfter}, {"merge_after", o.MergeAfter}} {
		if d.v < MinScaleWindow {
			errs.Add(d.key, "must be at least %v (the autoscaler samples once a second), got %v", MinScaleWindow, d.v)
		}
	}
	if o.Cooldown < 0 {
		errs.Add("cooldown", "must not be negative")
	}
	if o.MaxShards < MinShards || o.MaxShards > MaxShards {
		errs.Add("max_shards", "must be %d..%d, got %d", MinShards, MaxShards, o.MaxShards)
	}
	return errs
}

// validateMode checks streams[].mode and, for an on-demand stream, that
// its shard count fits under on_demand.max_shards.
func (c StreamConfig) validateMode(errs *conf.ErrorList) {
	if c.Mode != "" {
		errs.Enum("mode", c.Mode, ModeProvisioned, ModeOnDemand)
	}
	errs.Nest("on_demand", c.OnDemand.Validate())
	if c.Mode == ModeOnDemand && c.OnDemand.MaxShards >= MinShards && c.Shards > c.OnDemand.MaxShards {
		errs.Add("on_demand.max_shards", "(%d) must be at least shards (%d), the floor the autoscaler never goes below",
			c.OnDemand.MaxShards, c.Shards)
	}
}

// Mode is the stream's capacity mode, ModeProvisioned or ModeOnDemand.
func (st *Stream) Mode() string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return modeOf(st.meta)
}

func modeOf(m streamMeta) string {
	if m.Mode == ModeOnDemand {
		return ModeOnDemand
	}
	return ModeProvisioned
}

// scaleBounds are the open-shard counts the autoscaler keeps the stream
// within: never below the count it was created or switched to on-demand
// with, never above on_demand.max_shards (or the floor, if higher).
func (st *Stream) scaleBounds() (floor, ceiling int) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	floor = max(st.meta.MinShards, MinShards)
	return floor, min(max(st.cfg.OnDemand.MaxShards, floor), MaxOpenShards)
}

// SetMode switches the stream's capacity mode (UpdateStreamMode) and
// persists it. Switching to on-demand makes the current open shard count
// the autoscaler's floor. Like Kinesis it refuses (ErrResourceInUse) while
// the stream is being resharded; setting the mode it already has changes
// nothing.
func (st *Stream) SetMode(mode string) error {
	if mode != ModeProvisioned && mode != ModeOnDemand {
		return fmt.Errorf("%w: stream mode %q is not %s or %s", ErrInvalidArgument, mode, ModeProvisioned, ModeOnDemand)
	}
	if st.resharding.Load() > 0 {
		return fmt.Errorf("%w: stream %s is being resharded; try again when it is done", ErrResourceInUse, st.name)
	}
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	return st.setModeLocked(mode, len(st.openShards()))
}

// applyDeclaredMode puts a configured streams[].mode in force; the floor
// of an on-demand stream is its configured shard count.
func (st *Stream) applyDeclaredMode(c StreamConfig) error {
	if c.Mode == "" {
		return nil
	}
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	return st.setModeLocked(c.Mode, c.Shards)
}

// setModeLocked writes the new mode and floor to the shard map. Callers
// hold reshardMu.
func (st *Stream) setModeLocked(mode string, floor int) error {
	st.mu.RLock()
	next := st.meta
	st.mu.RUnlock()
	if mode == ModeProvisioned {
		floor = 0
	}
	if modeOf(next) == mode && next.MinShards == floor {
		return nil
	}
	next.Mode, next.MinShards = mode, floor
	if mode == ModeProvisioned {
		next.Mode = ""
	}
	if err := writeMeta(st.store.opts.metaFS, st.dir, next); err != nil {
		return fmt.Errorf("shards: set mode of %s: %w", st.name, err)
	}
	st.mu.Lock()
	st.meta = next
	st.mu.Unlock()
	st.store.log.Info().Str("stream", st.name).Str("mode", mode).Int("min_shards", floor).Msg("stream mode set")
	return nil
}
