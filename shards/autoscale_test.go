package shards

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/conf"
)

// testPolicy: capacity 100 records/s and 1000 bytes/s per shard, split at
// 80 % over 5 s, merge below 30 % over 10 s, cooldown 20 s, 1..4 shards.
func testPolicy() policy {
	return policy{
		cfg: OnDemandConfig{SplitAt: 0.8, SplitAfter: conf.Duration(5 * time.Second), MergeAt: 0.3,
			MergeAfter: conf.Duration(10 * time.Second), Cooldown: conf.Duration(20 * time.Second), MaxShards: 4},
		records: 100, bytes: 1000, floor: 1, ceiling: 4,
	}
}

// loads builds adjacent open shards, one per rate pair {records/s, bytes/s}
// over both windows; a negative records value means "too young to know".
func loads(rates ...[2]float64) []shardLoad {
	ranges := EvenRanges(len(rates))
	out := make([]shardLoad, len(rates))
	for i, r := range rates {
		l := shardLoad{sh: &Shard{}, info: ShardInfo{ID: shardID(i), StartHash: ranges[i][0], EndHash: ranges[i][1]}}
		if r[0] >= 0 {
			l.split = rate{known: true, records: r[0], bytes: r[1]}
			l.merge = l.split
		}
		out[i] = l
	}
	return out
}

func TestPolicyDecide(t *testing.T) {
	now := time.Unix(1000, 0)
	longAgo := now.Add(-time.Hour)
	cases := []struct {
		name        string
		open        []shardLoad
		floor       int
		lastReshard time.Time
		want        string // "", "split <id>", "merge <id>+<id>"
	}{
		{"idle single shard stays", loads([2]float64{0, 0}), 1, longAgo, ""},
		{"records over split_at splits", loads([2]float64{80, 0}), 1, longAgo, "split shardId-000000000000"},
		{"just under split_at does not", loads([2]float64{79.9, 0}), 1, longAgo, ""},
		{"bytes alone can split", loads([2]float64{1, 850}), 1, longAgo, "split shardId-000000000000"},
		{"the hottest shard splits first", loads([2]float64{85, 0}, [2]float64{95, 0}), 1, longAgo, "split shardId-000000000001"},
		{"a shard younger than the window waits", loads([2]float64{-1, 0}), 1, longAgo, ""},
		{"no split at max_shards", loads([2]float64{99, 0}, [2]float64{99, 0}, [2]float64{99, 0}, [2]float64{99, 0}), 1, longAgo, ""},
		{"a split wins over a merge", loads([2]float64{0, 0}, [2]float64{0, 0}, [2]float64{90, 0}), 1, longAgo, "split shardId-000000000002"},
		{"an idle pair merges", loads([2]float64{10, 100}, [2]float64{10, 100}), 1, longAgo, "merge shardId-000000000000+shardId-000000000001"},
		{"the quietest pair merges", loads([2]float64{20, 0}, [2]float64{5, 0}, [2]float64{5, 0}), 1, longAgo, "merge shardId-000000000001+shardId-000000000002"},
		{"combined at merge_at does not merge", loads([2]float64{15, 0}, [2]float64{15, 0}), 1, longAgo, ""},
		{"combined bytes over merge_at does not merge", loads([2]float64{1, 200}, [2]float64{1, 200}), 1, longAgo, ""},
		{"never below the floor", loads([2]float64{0, 0}, [2]float64{0, 0}), 2, longAgo, ""},
		{"no merge within the cooldown", loads([2]float64{0, 0}, [2]float64{0, 0}), 1, now.Add(-19 * time.Second), ""},
		{"merge once the cooldown passed", loads([2]float64{0, 0}, [2]float64{0, 0}), 1, now.Add(-20 * time.Second), "merge shardId-000000000000+shardId-000000000001"},
		{"a young neighbour does not merge", loads([2]float64{0, 0}, [2]float64{-1, 0}), 1, longAgo, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testPolicy()
			p.floor = c.floor
			d := p.decide(c.open, now, c.lastReshard, nil)
			got := ""
			switch d.action {
			case actionSplit:
				got = "split " + d.shard.info.ID
			case actionMerge:
				got = "merge " + d.shard.info.ID + "+" + d.other.info.ID
			}
			if got != c.want {
				t.Fatalf("decide = %q, want %q", got, c.want)
			}
		})
	}
}

func TestPolicyLeavesUnsplittableShards(t *testing.T) {
	open := loads([2]float64{99, 0}, [2]float64{85, 0})
	d := testPolicy().decide(open, time.Unix(1000, 0), time.Unix(0, 0), map[*Shard]bool{open[0].sh: true})
	if d.action != actionSplit || d.shard.info.ID != open[1].info.ID {
		t.Fatalf("decide = %+v, want a split of the other hot shard", d)
	}
}

func TestRateOverWindow(t *testing.T) {
	t0 := time.Unix(100, 0)
	var s []loadSample
	for i := 0; i <= 12; i++ {
		s = append(s, loadSample{at: t0.Add(time.Duration(i) * time.Second), records: int64(10 * i), bytes: int64(100 * i)})
	}
	now := s[len(s)-1].at
	if r := rateOver(s, now, 5*time.Second); !r.known || r.records != 10 || r.bytes != 100 {
		t.Fatalf("rate over 5s = %+v, want 10 records/s, 100 bytes/s", r)
	}
	if r := rateOver(s, now, 13*time.Second); r.known {
		t.Fatalf("rate over 13s of a 12s history = %+v, want unknown", r)
	}
	trimmed := trimSamples(s, now, 5*time.Second)
	if len(trimmed) != 6 || !trimmed[0].at.Equal(now.Add(-5*time.Second)) {
		t.Fatalf("trimmed to %d samples from %v, want 6 from now-5s", len(trimmed), trimmed[0].at)
	}
	if r := rateOver(trimmed, now, 5*time.Second); !r.known || r.records != 10 {
		t.Fatalf("rate after trimming = %+v", r)
	}
}

// onDemandStream is a one-shard on-demand stream limited to 100 records/s
// per shard, scaling with testPolicy's windows.
func onDemandStream(name string) StreamConfig {
	c := testStream(name, 1)
	c.Mode = ModeOnDemand
	c.Rate.RecordsPerSec = 100
	c.OnDemand = OnDemandConfig{SplitAt: 0.8, SplitAfter: conf.Duration(5 * time.Second), MergeAt: 0.3,
		MergeAfter: conf.Duration(10 * time.Second), Cooldown: conf.Duration(20 * time.Second), MaxShards: 4}
	return c
}

type scaleEnv struct {
	t     *testing.T
	clock *fakeClock
	store *Store
	as    *Autoscaler
	reg   *prometheus.Registry
	seq   map[string]int
}

func newScaleEnv(t *testing.T, streams ...StreamConfig) *scaleEnv {
	clock := newFakeClock()
	s := openStore(t, t.TempDir(), Options{Clock: clock.Now, Streams: streams})
	t.Cleanup(func() { s.Close() })
	reg := prometheus.NewRegistry()
	as, err := NewAutoscaler(s, withAutoscaleClock(AutoscaleOptions{Logger: zerolog.Nop(), Registerer: reg}, clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	return &scaleEnv{t: t, clock: clock, store: s, as: as, reg: reg, seq: map[string]int{}}
}

// second writes n records to each of streams (keys from keys, each record
// numbered per stream and key) in one PutRecords-like batch, then lets a
// second pass and runs a pass.
func (e *scaleEnv) second(n int, keys []string, streams ...string) {
	e.t.Helper()
	for _, stream := range streams {
		recs := make([]*Record, n)
		for i := range recs {
			k := keys[i%len(keys)]
			recs[i] = &Record{Key: k, Data: []byte(fmt.Sprintf("%s/%d", k, e.seq[stream+"/"+k]))}
			e.seq[stream+"/"+k]++
		}
		if n == 0 {
			continue
		}
		_, errs := e.store.AppendBatch(context.Background(), stream, recs, nil)
		for _, err := range errs {
			if err != nil {
				e.t.Fatalf("append: %v", err)
			}
		}
	}
	e.clock.Add(time.Second)
	e.as.tick()
}

func (e *scaleEnv) open(stream string) int {
	st, err := e.store.Stream(stream)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(st.openShards())
}

func (e *scaleEnv) decisions(stream, action, outcome string) float64 {
	var m dto.Metric
	if err := e.as.decisions.WithLabelValues(stream, action, outcome).Write(&m); err != nil {
		e.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func keyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("device-%03d", i)
	}
	return out
}

// The whole loop on a real store with an injected clock: 90 records/s on
// a 100 records/s shard splits it once split_after has passed; the load
// then spreads below split_at; when it stops, the two merge back once both
// merge_after and the cooldown have passed, and not below the floor. Every
// record is read back, in order per key, parents before children.
func TestAutoscalerSplitsUnderLoadAndMergesBack(t *testing.T) {
	e := newScaleEnv(t, onDemandStream("od"), testStream("fixed", 1))
	keys := keyNames(64)
	splitAt := -1
	for sec := 1; sec <= 15; sec++ {
		e.second(90, keys, "od", "fixed") // a provisioned stream is never touched
		if e.open("od") == 2 && splitAt < 0 {
			splitAt = sec
		}
	}
	// Samples start at the first pass; the 5 s window is covered at the
	// sixth.
	if splitAt != 6 {
		t.Fatalf("split after %d s of load, want 6 (split_after 5 s from the first sample)", splitAt)
	}
	if got := e.open("od"); got != 2 {
		t.Fatalf("%d open shards under a load two shards carry at 45%%, want 2 (no further split)", got)
	}
	if got := e.open("fixed"); got != 1 {
		t.Fatalf("provisioned stream resharded to %d shards", got)
	}
	if e.decisions("od", actionSplit, "done") != 1 {
		t.Fatalf("split decisions = %v, want 1", e.decisions("od", actionSplit, "done"))
	}
	st, _ := e.store.Stream("od")
	for _, sh := range st.openShards() {
		if n := sh.Last() - sh.Info().StartSeq + 1; n < 200 {
			t.Errorf("child %s took %d records of the last seconds' load; the split point does not spread it", sh.ID(), n)
		}
	}

	// Load stops. The children are younger than the cooldown (20 s) and
	// merge_after (10 s): the merge comes 20 s after the split, not before.
	sinceSplit := 15 - splitAt
	mergedAt := -1
	for s := sinceSplit; s < 40; s++ {
		e.second(0, keys, "od")
		if e.open("od") == 1 && mergedAt < 0 {
			mergedAt = s + 1
		}
	}
	if mergedAt < 20 || mergedAt > 22 {
		t.Fatalf("merged %d s after the split, want 20..22 (cooldown 20 s)", mergedAt)
	}
	if e.decisions("od", actionMerge, "done") != 1 || e.open("od") != 1 {
		t.Fatalf("merges = %v, open = %d: want one merge back to the floor of 1", e.decisions("od", actionMerge, "done"), e.open("od"))
	}

	got := readAll(t, st)
	for _, k := range keys {
		recs := got[k]
		if len(recs) != e.seq["od/"+k] {
			t.Fatalf("key %s: read %d records, wrote %d", k, len(recs), e.seq["od/"+k])
		}
		for i, r := range recs {
			if want := fmt.Sprintf("%s/%d", k, i); string(r.Data) != want {
				t.Fatalf("key %s: record %d is %q, want %q (order lost across the reshard)", k, i, r.Data, want)
			}
		}
	}
	mf, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range mf {
		names = append(names, f.GetName())
	}
	if s := strings.Join(names, " "); !strings.Contains(s, "weir_autoscale_decisions_total") || !strings.Contains(s, "weir_autoscale_shard_load_ratio") {
		t.Fatalf("registry lacks the autoscaler's metrics: %s", s)
	}
}

// One partition key carrying a shard's load cannot be spread by a split:
// the shard is left alone and that is counted once, not every second.
func TestAutoscalerLeavesOneHotKey(t *testing.T) {
	e := newScaleEnv(t, onDemandStream("od"))
	for sec := 0; sec < 12; sec++ {
		e.second(90, []string{"the-one-device"}, "od")
	}
	if got := e.open("od"); got != 1 {
		t.Fatalf("one hot key split the shard into %d", got)
	}
	if n := e.decisions("od", actionSplit, "unsplittable"); n != 1 {
		t.Fatalf("unsplittable decisions = %v, want 1", n)
	}
}

func TestSplitPointSpreadsFewKeys(t *testing.T) {
	e := newScaleEnv(t, testStream("s", 1))
	st, _ := e.store.Stream("s")
	sh := st.openShards()[0]
	info := sh.Info()
	// Two keys, 3:1. The midpoint would put both on one side half the
	// time; the sampled point puts them on different sides.
	for i := 0; i < 40; i++ {
		put(t, e.store, "s", "alpha", "x")
		if i%3 == 0 {
			put(t, e.store, "s", "beta", "x")
		}
	}
	p, ok := splitPoint(sh, info)
	if !ok {
		t.Fatal("two keys judged unsplittable")
	}
	a, b := HashOf("alpha").Cmp(p) < 0, HashOf("beta").Cmp(p) < 0
	if a == b {
		t.Fatalf("split point %s leaves alpha and beta on one side", p)
	}
	if p.Cmp(info.StartHash) <= 0 || p.Cmp(info.EndHash) > 0 {
		t.Fatalf("split point %s outside (%s, %s]", p, info.StartHash, info.EndHash)
	}
	// Too few records: the middle of the range.
	e2 := newScaleEnv(t, testStream("m", 1))
	st2, _ := e2.store.Stream("m")
	m, ok := splitPoint(st2.openShards()[0], st2.openShards()[0].Info())
	if want := EvenRanges(2)[1][0]; !ok || m != want {
		t.Fatalf("empty shard split at %s, want the middle %s", m, want)
	}
}

func TestSetModePersistsAndRefuses(t *testing.T) {
	dir := t.TempDir()
	tmpl := testStream("", 1)
	tmpl.OnDemand.MaxShards = 2
	s := openStore(t, dir, Options{DefaultStream: tmpl})
	st, err := s.CreateStream(StreamConfig{Name: "api", Shards: 3})
	must(t, err)
	if st.Mode() != ModeProvisioned {
		t.Fatalf("new stream mode %q", st.Mode())
	}
	if err := st.SetMode("ON_DEMAND"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SetMode(bad) = %v, want ErrInvalidArgument", err)
	}
	st.resharding.Add(1) // as during an UpdateShardCount
	if err := st.SetMode(ModeOnDemand); !errors.Is(err, ErrResourceInUse) {
		t.Fatalf("SetMode while resharding = %v, want ErrResourceInUse", err)
	}
	st.resharding.Add(-1)
	must(t, st.SetMode(ModeOnDemand))
	if f, c := st.scaleBounds(); f != 3 || c != 3 {
		t.Fatalf("bounds after switching with 3 open shards = %d..%d, want 3..3 (max_shards 2 yields to the floor)", f, c)
	}
	od, err := s.CreateStream(StreamConfig{Name: "od", Shards: 2, Mode: ModeOnDemand})
	must(t, err)
	if f, _ := od.scaleBounds(); od.Mode() != ModeOnDemand || f != 2 {
		t.Fatalf("on-demand stream: mode %q floor %d", od.Mode(), f)
	}
	// The template's ceiling (max_shards 2 here) yields to a bigger count.
	big, err := s.CreateStream(StreamConfig{Name: "big", Shards: 3, Mode: ModeOnDemand})
	must(t, err)
	if f, c := big.scaleBounds(); f != 3 || c != f {
		t.Fatalf("on-demand stream over max_shards: bounds %d..%d, want its count as both", f, c)
	}
	must(t, s.Close())

	s = openStore(t, dir, Options{DefaultStream: tmpl})
	defer s.Close()
	for _, name := range []string{"api", "od"} {
		st, err := s.Stream(name)
		must(t, err)
		if st.Mode() != ModeOnDemand {
			t.Fatalf("%s: mode after restart %q", name, st.Mode())
		}
	}
	st, _ = s.Stream("api")
	must(t, st.SetMode(ModeProvisioned))
	if f, _ := st.scaleBounds(); st.Mode() != ModeProvisioned || f != MinShards {
		t.Fatalf("back to provisioned: mode %q floor %d", st.Mode(), f)
	}
}

// streams[].mode is put in force at start and when a reload changes it;
// a reload that leaves it alone keeps what UpdateStreamMode set.
func TestDeclaredModeAndReload(t *testing.T) {
	dir := t.TempDir()
	c := onDemandStream("tel")
	c.Shards = 2
	s := openStore(t, dir, Options{Streams: []StreamConfig{c}})
	st, _ := s.Stream("tel")
	if f, _ := st.scaleBounds(); st.Mode() != ModeOnDemand || f != 2 {
		t.Fatalf("declared on_demand: mode %q floor %d", st.Mode(), f)
	}
	must(t, st.SetMode(ModeProvisioned))
	if _, err := s.Apply([]StreamConfig{c}); err != nil {
		t.Fatal(err)
	}
	if st.Mode() != ModeProvisioned {
		t.Fatal("a reload that did not change mode undid UpdateStreamMode")
	}
	p := c
	p.Mode = ModeProvisioned
	cs, err := s.Apply([]StreamConfig{p})
	must(t, err)
	if !strings.Contains(fmt.Sprint(cs), "mode") {
		t.Fatalf("changes %v do not report mode", cs)
	}
	if _, err := s.Apply([]StreamConfig{c}); err != nil {
		t.Fatal(err)
	}
	if st.Mode() != ModeOnDemand {
		t.Fatal("a reload back to on_demand did not apply")
	}
	must(t, s.Close())
	// Unset in the file: the stream keeps its persisted mode.
	u := c
	u.Mode = ""
	s = openStore(t, dir, Options{Streams: []StreamConfig{u}})
	defer s.Close()
	st, _ = s.Stream("tel")
	if st.Mode() != ModeOnDemand {
		t.Fatalf("mode unset in the file: stream is %q, want the persisted on_demand", st.Mode())
	}
}

func TestOnDemandConfigValidate(t *testing.T) {
	base := onDemandStream("x")
	cases := []struct {
		name string
		edit func(*StreamConfig)
		want string
	}{
		{"bad mode", func(c *StreamConfig) { c.Mode = "ON_DEMAND" }, "mode: must be one of provisioned, on_demand"},
		{"split_at over 1", func(c *StreamConfig) { c.OnDemand.SplitAt = 1.5 }, "on_demand.split_at"},
		{"merge_at not below split_at", func(c *StreamConfig) { c.OnDemand.MergeAt = 0.8 }, "on_demand.merge_at: (0.8) must be below split_at (0.8)"},
		{"window too short", func(c *StreamConfig) { c.OnDemand.SplitAfter = conf.Duration(time.Millisecond) }, "on_demand.split_after: must be at least 1s"},
		{"negative cooldown", func(c *StreamConfig) { c.OnDemand.Cooldown = -1 }, "on_demand.cooldown"},
		{"max_shards below shards", func(c *StreamConfig) { c.Shards = 8 }, "on_demand.max_shards: (4) must be at least shards (8)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			errs := c.Validate()
			if !strings.Contains(fmt.Sprint(errs), tc.want) {
				t.Fatalf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
	p := base
	p.Mode, p.Shards = ModeProvisioned, 8 // max_shards only bounds on-demand streams
	if errs := p.Validate(); len(errs) != 0 {
		t.Fatalf("provisioned stream with 8 shards: %v", errs)
	}
}
