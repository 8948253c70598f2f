package shards

// The on-demand policy. Once a second the Autoscaler samples, for every
// open shard of each on-demand stream, how many records and bytes its rate
// limiter admitted, and derives mean rates over two trailing windows.
// Capacity is the shard's write limit (rate.records_per_sec and
// rate.bytes_per_sec; Kinesis' 1,000 records/s and 1 MiB/s where a
// dimension is unlimited). Then at most one action per stream and pass:
//
//   - Split a shard whose mean rate over split_after (default 30 s)
//     reached split_at (default 0.8) of capacity in records/s or in
//     bytes/s, the hottest first, while the stream has fewer than
//     max_shards (default 64) open shards. 80 % splits while the shard
//     still absorbs bursts, before producers are throttled for long; a
//     30 s mean ignores bursts shorter than a typical device reporting
//     period. A shard younger than the window has no verdict yet, which
//     also paces a ramp: each generation of children needs a full window
//     of its own before it is split again.
//   - Otherwise merge the two adjacent shards whose combined mean rate
//     over merge_after (default 5 min) is lowest and below merge_at
//     (default 0.3) of one shard's capacity in records/s and bytes/s, if
//     the stream has more open shards than its floor (the count it was
//     created or switched to on-demand with) and no reshard happened in
//     the last cooldown (default 2 min). The merged shard then runs below
//     30 %, far under the 80 % that would split it again, so the policy
//     does not flap; merging slowly is cheap (an idle shard costs a file
//     handle), merging too early costs a split later.
//
// The split point is chosen from the shard's most recent records (up to
// 1,000): the distinct hash key that divides them most evenly, so both
// children get load even when a few partition keys carry it. When one
// key carries everything, no split can spread it (as in Kinesis); the
// shard is left as it is and that is logged and counted once. With fewer
// than 16 records to go by, the shard is split at the middle of its range.
//
// Splits and merges are the ones SplitShard and MergeShards use: one
// writer per shard, parents sealed before their children take writes,
// readers draining parents before children. Every decision is logged and
// counted in weir_autoscale_decisions_total; each open shard's load as a
// fraction of capacity is weir_autoscale_shard_load_ratio.

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Split-point sampling: how many recent records to look at, and how few
// make the middle of the range a better guess than the records.
const (
	splitSample    = 1000
	minSplitSample = 16
	splitSampleMax = 8 << 20 // bytes read for a split point
	autoscaleEvery = time.Second
)

// loadCounter counts what a shard's limiter admitted.
type loadCounter struct{ records, bytes atomic.Int64 }

func (l *loadCounter) add(n int, size int64) {
	l.records.Add(int64(n))
	l.bytes.Add(size)
}

// AutoscaleOptions configures an Autoscaler.
type AutoscaleOptions struct {
	Logger zerolog.Logger
	// Registerer, if set, gets the decision counters and load gauges
	// until Close.
	Registerer prometheus.Registerer

	// Test seams, set only through export_test.go.
	clock func() time.Time
	every time.Duration
}

// Autoscaler splits and merges the shards of a store's on-demand streams
// as their write rates change (the policy is at the top of this file).
type Autoscaler struct {
	store *Store
	log   zerolog.Logger
	now   func() time.Time
	every time.Duration
	reg   prometheus.Registerer

	decisions *prometheus.CounterVec
	load      *prometheus.GaugeVec

	mu      sync.Mutex // one pass at a time; guards streams
	streams map[*Stream]*scaleState
}

// scaleState is what the autoscaler remembers of one stream.
type scaleState struct {
	samples     map[*Shard][]loadSample
	lastReshard time.Time // when the set of open shards last changed
	unsplit     map[*Shard]bool
}

type loadSample struct {
	at             time.Time
	records, bytes int64
}

// NewAutoscaler makes an autoscaler of s; Run drives it.
func NewAutoscaler(s *Store, o AutoscaleOptions) (*Autoscaler, error) {
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.every <= 0 {
		o.every = autoscaleEvery
	}
	a := &Autoscaler{
		store: s, log: o.Logger, now: o.clock, every: o.every, reg: o.Registerer,
		streams: map[*Stream]*scaleState{},
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_autoscale_decisions_total",
			Help: "Reshards the on-demand autoscaler decided, by stream, action (split, merge) and outcome (done, failed, unsplittable: one partition key carries the shard's load).",
		}, []string{"stream", "action", "outcome"}),
		load: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_autoscale_shard_load_ratio",
			Help: "Mean write rate of an on-demand stream's open shard over split_after, as a fraction of its limit (the larger of records/s and bytes/s).",
		}, []string{"stream", "shard"}),
	}
	if a.reg != nil {
		for _, c := range []prometheus.Collector{a.decisions, a.load} {
			if err := a.reg.Register(c); err != nil {
				return nil, fmt.Errorf("shards: register autoscaler metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Run makes a pass every second until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.tick()
		}
	}
}

// Close unregisters the metrics; call it after Run has returned.
func (a *Autoscaler) Close() {
	if a.reg != nil {
		a.reg.Unregister(a.decisions)
		a.reg.Unregister(a.load)
	}
}

// tick is one pass over every on-demand stream.
func (a *Autoscaler) tick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	seen := map[*Stream]bool{}
	for _, st := range a.store.Streams() {
		if st.Mode() != ModeOnDemand {
			continue
		}
		seen[st] = true
		a.scale(st, now)
	}
	for st, ss := range a.streams {
		if !seen[st] {
			for sh := range ss.samples {
				a.load.DeleteLabelValues(st.name, sh.ID())
			}
			delete(a.streams, st)
		}
	}
}

// scale samples one stream's shards and acts on the policy's decision.
func (a *Autoscaler) scale(st *Stream, now time.Time) {
	ss := a.streams[st]
	if ss == nil {
		// A stream just seen (or a gateway just started) counts as just
		// resharded: nothing merges before a cooldown has passed.
		ss = &scaleState{samples: map[*Shard][]loadSample{}, lastReshard: now, unsplit: map[*Shard]bool{}}
		a.streams[st] = ss
	}
	cfg := st.Config()
	p := newPolicy(cfg)
	p.floor, p.ceiling = st.scaleBounds()
	open := st.openShards()
	isOpen := make(map[*Shard]bool, len(open))
	changed := len(open) != len(ss.samples)
	loads := make([]shardLoad, len(open))
	for i, sh := range open {
		isOpen[sh] = true
		if _, ok := ss.samples[sh]; !ok {
			changed = true
		}
		s := append(ss.samples[sh], loadSample{at: now, records: sh.load.records.Load(), bytes: sh.load.bytes.Load()})
		s = trimSamples(s, now, max(p.cfg.SplitAfter.D(), p.cfg.MergeAfter.D()))
		ss.samples[sh] = s
		loads[i] = shardLoad{sh: sh, info: sh.Info(),
			split: rateOver(s, now, p.cfg.SplitAfter.D()), merge: rateOver(s, now, p.cfg.MergeAfter.D())}
		if loads[i].split.known {
			a.load.WithLabelValues(st.name, sh.ID()).Set(p.fraction(loads[i].split))
		}
	}
	for sh := range ss.samples {
		if !isOpen[sh] {
			delete(ss.samples, sh)
			delete(ss.unsplit, sh)
			a.load.DeleteLabelValues(st.name, sh.ID())
		}
	}
	if changed {
		ss.lastReshard = now
	}
	d := p.decide(loads, now, ss.lastReshard, ss.unsplit)
	switch d.action {
	case actionSplit:
		a.split(st, ss, d)
	case actionMerge:
		a.merge(st, d)
	}
}

// trimSamples drops samples older than the newest one at or before
// now-window: that one is still needed as the window's start.
func trimSamples(s []loadSample, now time.Time, window time.Duration) []loadSample {
	cut := now.Add(-window)
	i := 0
	for i+1 < len(s) && !s[i+1].at.After(cut) {
		i++
	}
	return s[i:]
}

// rate is a mean write rate; known is false until the shard has been
// watched for the whole window.
type rate struct {
	known          bool
	records, bytes float64 // per second
}

// rateOver is the mean rate from the newest sample at or before
// now-window to the last sample (taken at now).
func rateOver(s []loadSample, now time.Time, window time.Duration) rate {
	cur := s[len(s)-1]
	cut := now.Add(-window)
	for i := len(s) - 2; i >= 0; i-- {
		if !s[i].at.After(cut) {
			dt := cur.at.Sub(s[i].at).Seconds()
			return rate{known: true, records: float64(cur.records-s[i].records) / dt, bytes: float64(cur.bytes-s[i].bytes) / dt}
		}
	}
	return rate{}
}

type shardLoad struct {
	sh           *Shard
	info         ShardInfo
	split, merge rate
}

// policy is the on-demand decision rule for one stream.
type policy struct {
	cfg            OnDemandConfig
	records, bytes float64 // one shard's capacity per second
	floor, ceiling int     // open shard bounds
}

func newPolicy(cfg StreamConfig) policy {
	p := policy{cfg: cfg.OnDemand.WithDefaults(), records: float64(cfg.Rate.RecordsPerSec), bytes: float64(cfg.Rate.BytesPerSec.Bytes())}
	if p.records <= 0 {
		p.records = kinesisShardRecords
	}
	if p.bytes <= 0 {
		p.bytes = float64(kinesisShardBytes)
	}
	return p
}

// fraction is a rate as a fraction of one shard's capacity: the larger
// of its records/s and bytes/s fractions.
func (p policy) fraction(r rate) float64 { return max(r.records/p.records, r.bytes/p.bytes) }

const (
	actionNone  = ""
	actionSplit = "split"
	actionMerge = "merge"
)

type decision struct {
	action string
	shard  shardLoad // split: the shard; merge: the lower of the pair
	other  shardLoad // merge: the upper neighbour
	load   float64   // the fraction that decided it
}

// decide applies the policy to a stream's open shards (ordered by hash
// range). unsplit marks shards whose load one key carries.
func (p policy) decide(open []shardLoad, now, lastReshard time.Time, unsplit map[*Shard]bool) decision {
	var d decision
	if len(open) < p.ceiling {
		for _, l := range open {
			if !l.split.known || unsplit[l.sh] {
				continue
			}
			if f := p.fraction(l.split); f >= p.cfg.SplitAt && f > d.load {
				d = decision{action: actionSplit, shard: l, load: f}
			}
		}
		if d.action != actionNone {
			return d
		}
	}
	if len(open) <= p.floor || now.Sub(lastReshard) < p.cfg.Cooldown.D() {
		return d
	}
	best := p.cfg.MergeAt
	for i := 0; i+1 < len(open); i++ {
		lo, hi := open[i], open[i+1]
		if !lo.merge.known || !hi.merge.known || lo.info.EndHash.Add1() != hi.info.StartHash {
			continue
		}
		sum := rate{known: true, records: lo.merge.records + hi.merge.records, bytes: lo.merge.bytes + hi.merge.bytes}
		if f := p.fraction(sum); f < best {
			best = f
			d = decision{action: actionMerge, shard: lo, other: hi, load: f}
		}
	}
	return d
}

// split carries out a split decision.
func (a *Autoscaler) split(st *Stream, ss *scaleState, d decision) {
	sh := d.shard.sh
	point, ok := splitPoint(sh, d.shard.info)
	if !ok {
		ss.unsplit[sh] = true
		a.decisions.WithLabelValues(st.name, actionSplit, "unsplittable").Inc()
		a.log.Warn().Str("stream", st.name).Str("shard", sh.ID()).Float64("load", d.load).
			Msg("autoscaler: shard is over split_at but one partition key carries its load; splitting cannot spread it")
		return
	}
	err := a.reshard(st, func() error { return st.splitLocked(sh.ID(), point) })
	a.done(st, actionSplit, err, a.log.Info().Str("shard", sh.ID()).Str("new_starting_hash_key", point.String()).
		Float64("records_per_sec", d.shard.split.records).Float64("bytes_per_sec", d.shard.split.bytes))
}

// merge carries out a merge decision.
func (a *Autoscaler) merge(st *Stream, d decision) {
	err := a.reshard(st, func() error { return st.mergeLocked(d.shard.info.ID, d.other.info.ID) })
	a.done(st, actionMerge, err, a.log.Info().Str("shard", d.shard.info.ID).Str("adjacent_shard", d.other.info.ID).
		Float64("records_per_sec", d.shard.merge.records+d.other.merge.records).
		Float64("bytes_per_sec", d.shard.merge.bytes+d.other.merge.bytes))
}

// reshard runs op under the stream's reshard lock, unless UpdateStreamMode
// made the stream provisioned since the decision.
func (a *Autoscaler) reshard(st *Stream, op func() error) error {
	st.resharding.Add(1)
	defer st.resharding.Add(-1)
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	if st.Mode() != ModeOnDemand {
		return errNoLongerOnDemand
	}
	return op()
}

var errNoLongerOnDemand = fmt.Errorf("%w: the stream is no longer on-demand", ErrInvalidArgument)

func (a *Autoscaler) done(st *Stream, action string, err error, ev *zerolog.Event) {
	ev = ev.Str("stream", st.name).Str("action", action)
	switch {
	case err == nil:
		a.decisions.WithLabelValues(st.name, action, "done").Inc()
		ev.Msg("autoscaler: " + action)
	case err == errNoLongerOnDemand:
		ev.Discard()
	default:
		a.decisions.WithLabelValues(st.name, action, "failed").Inc()
		ev.Discard()
		a.log.Error().Err(err).Str("stream", st.name).Str("action", action).Msg("autoscaler: reshard failed")
	}
}

// splitPoint chooses a split shard's NewStartingHashKey from its recent
// records (see the policy above); ok is false when one key carries them
// all.
func splitPoint(sh *Shard, info ShardInfo) (HashKey, bool) {
	var hashes []HashKey
	if last, th := sh.Last(), sh.TrimHorizon(); last >= th {
		// The shard's sequence numbers have the stream's other shards'
		// records between them: look back far enough to find about
		// splitSample of its own.
		span := uint64(splitSample) * uint64(max(1, len(sh.stream.openShards())))
		from := th
		if last-th+1 > span {
			from = last - span + 1
		}
		for n := 0; n < splitSample && from <= last; {
			recs, next, err := sh.Read(from, splitSample-n, splitSampleMax)
			if err != nil || next <= from {
				break
			}
			for _, r := range recs {
				// Records placed with an ExplicitHashKey may hash elsewhere.
				if h := HashOf(r.Key); info.Contains(h) {
					hashes = append(hashes, h)
				}
			}
			n += len(recs)
			from = next
		}
	}
	if len(hashes) < minSplitSample {
		return midpoint(info)
	}
	sort.Slice(hashes, func(i, j int) bool { return hashes[i].Cmp(hashes[j]) < 0 })
	n, best := len(hashes), -1
	for i := 1; i < n; i++ {
		if hashes[i] != hashes[i-1] && (best < 0 || absInt(2*i-n) < absInt(2*best-n)) {
			best = i
		}
	}
	if best < 0 {
		return HashKey{}, false
	}
	// Children own [start, h-1] and [h, end]: h > start since it is
	// above the smallest sampled hash.
	return hashes[best], true
}

// midpoint splits a range in two halves; a one-key range cannot split.
func midpoint(info ShardInfo) (HashKey, bool) {
	if info.StartHash == info.EndHash {
		return HashKey{}, false
	}
	s, e := info.StartHash.Big(), info.EndHash.Big()
	half := new(big.Int).Sub(e, s)
	half.Add(half, big.NewInt(1)).Rsh(half, 1)
	return hashFromBig(half.Add(half, s)), true
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
