package forwarder

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/integration/faultproxy"
	"github.com/weir-gateway/weir/integration/kinesalite"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// rig is one end-to-end setup: a real shards.Store with a local stream, an
// upstream stream in kinesalite, and the fault proxy between them.
type rig struct {
	t      *testing.T
	store  *shards.Store
	stream string
	target string
	up     *kinesis.Client // straight to kinesalite, for reading back
	proxy  *faultproxy.Proxy
	keys   []string
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func newRig(t *testing.T, localShards, upShards, keys int) *rig {
	t.Helper()
	ep := kinesaliteEndpoint(t)
	store, err := shards.Open(t.TempDir(), shards.Options{
		Logger:     zerolog.Nop(),
		Streams:    []shards.StreamConfig{unlimitedStream(localShards)},
		Durability: shards.Durability{Fsync: shards.FsyncInterval, Interval: conf.Duration(5 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r := &rig{t: t, store: store, stream: "telemetry", up: kinesalite.NewClient(ep), keys: keysN(keys)}
	r.target = fmt.Sprintf("%s-%d", nonName.ReplaceAllString(t.Name(), "-"), rand.IntN(1e6))
	if len(r.target) > 128 {
		r.target = r.target[len(r.target)-128:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kinesalite.CreateStream(ctx, r.up, r.target, upShards); err != nil {
		t.Fatal(err)
	}
	r.proxy, err = faultproxy.New(ep, 42)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.proxy.Close() })
	return r
}

// unlimitedStream declares the local stream "telemetry" without the
// default per-shard rate limits (an explicit non-zero RateConfig with zero
// rates means unlimited), so tests write as fast as the disk goes.
func unlimitedStream(n int) shards.StreamConfig {
	return shards.StreamConfig{Name: "telemetry", Shards: n,
		Rate: shards.RateConfig{OnLimit: shards.OnLimitBackpress, MaxWait: conf.Duration(2 * time.Second)}}.WithDefaults()
}

func (r *rig) config() Config {
	return Config{Stream: r.stream, TargetStream: r.target, Region: kinesalite.Region, Endpoint: r.proxy.URL(),
		MaxInFlight: 4, Linger: conf.Duration(10 * time.Millisecond), RequestTimeout: conf.Duration(2 * time.Second)}
}

func (r *rig) options() Options {
	return Options{
		Logger: testLogger(r.t), GatewayID: "gw-test", Seed: 9,
		LoadOptions: []func(*config.LoadOptions) error{config.WithCredentialsProvider(kinesalite.Credentials)},
		BackoffBase: 20 * time.Millisecond, BackoffCap: 500 * time.Millisecond,
		ProbeInterval: 200 * time.Millisecond, CommitInterval: 50 * time.Millisecond,
	}
}

// forwarder builds a forwarder on the real SDK client (NewClient) through
// the proxy.
func (r *rig) forwarder(cfg Config, opts Options) *Forwarder {
	r.t.Helper()
	f, err := Open(context.Background(), cfg, r.store, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

// write appends records n in [from, to) of every key, in order.
func (r *rig) write(from, to int) {
	r.t.Helper()
	for n := from; n < to; n++ {
		recs := make([]*shards.Record, len(r.keys))
		for i, k := range r.keys {
			recs[i] = &shards.Record{Key: k, Data: append(payload(k, n), make([]byte, 100)...), Topic: "devices/" + k + "/t", ClientID: k, QoS: 1}
		}
		_, errs := r.store.AppendBatch(context.Background(), r.stream, recs, nil)
		for _, err := range errs {
			if err != nil {
				r.t.Fatal(err)
			}
		}
	}
}

func (r *rig) total(perKey int) int64 { return int64(len(r.keys) * perKey) }

func (r *rig) waitSent(f *Forwarder, n int64, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lag := f.Lag()
		if lag.Sent+lag.Lost >= n && lag.Records == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("after %v: %+v, proxy %+v", timeout, lag, r.proxy.Counters())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readBack reads the upstream stream and unpacks envelopes and aggregates
// into (key, payload) in upstream order.
func (r *rig) readBack(cfg Config) []stored {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs, err := kinesalite.ReadAll(ctx, r.up, r.target)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []stored
	for _, rec := range recs {
		users, err := DecodeAggregate(rec.Data, rec.PartitionKey)
		if err != nil {
			r.t.Fatal(err)
		}
		if IsAggregate(rec.Data) != (cfg.Aggregate && len(users) > 1) {
			r.t.Fatalf("aggregate=%v but upstream record of %d user records", cfg.Aggregate, len(users))
		}
		for _, u := range users {
			if u.PartitionKey != rec.PartitionKey {
				r.t.Fatalf("user record key %s in record of %s", u.PartitionKey, rec.PartitionKey)
			}
			data := u.Data
			if cfg.Envelope == EnvelopeJSON {
				var env Envelope
				if err := json.Unmarshal(data, &env); err != nil {
					r.t.Fatalf("bad envelope %q: %v", data, err)
				}
				if env.Key != u.PartitionKey || env.Gateway != "gw-test" || env.Stream != r.stream ||
					env.ID != "gw-test/"+r.stream+"/"+env.Shard+"/"+env.Seq || env.Topic != "devices/"+env.Key+"/t" {
					r.t.Fatalf("envelope fields: %+v", env)
				}
				if _, err := time.Parse(TimeFormat, env.TS); err != nil {
					r.t.Fatalf("envelope ts %q: %v", env.TS, err)
				}
				data = env.Data
			}
			if i := len(data) - 100; i > 0 {
				data = data[:i] // drop the padding
			}
			out = append(out, stored{u.PartitionKey, data})
		}
	}
	return out
}

// runFaults forwards perKey records of every key (half written before the
// forwarder starts, half while it runs) under faults, and checks the
// result upstream. It returns the number of duplicates.
func (r *rig) runFaults(cfg Config, opts Options, faults faultproxy.Faults, perKey int) (int, Lag) {
	r.t.Helper()
	r.proxy.Set(faults)
	r.write(0, perKey/2)
	f := r.forwarder(cfg, opts)
	stop := start(r.t, f)
	r.write(perKey/2, perKey)
	r.waitSent(f, r.total(perKey), 25*time.Second)
	if err := stop(); err != nil {
		r.t.Fatal(err)
	}
	r.proxy.Set(faultproxy.Faults{})
	lag := f.Lag()
	if lag.Lost != 0 {
		r.t.Fatalf("lost %d", lag.Lost)
	}
	dups := checkOrder(r.t, r.readBack(cfg), r.keys, perKey)
	r.t.Logf("duplicates %d, lag %+v, proxy %+v", dups, lag, r.proxy.Counters())
	return dups, lag
}

func TestKinesaliteClean(t *testing.T) {
	for _, tc := range []struct {
		name      string
		envelope  string
		aggregate bool
	}{{"raw", EnvelopeRaw, false}, {"json", EnvelopeJSON, false}, {"aggregate_json", EnvelopeJSON, true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 4, 2, 100)
			cfg := r.config()
			cfg.Envelope, cfg.Aggregate = tc.envelope, tc.aggregate
			dups, lag := r.runFaults(cfg, r.options(), faultproxy.Faults{}, 20)
			if dups != 0 || lag.Resent != 0 {
				t.Fatalf("no faults: %d duplicates, %d resent", dups, lag.Resent)
			}
		})
	}
}

// TestKinesaliteFaults runs every fault the proxy injects. Unambiguous
// faults (the upstream did not store the data) must cause no duplicates.
func TestKinesaliteFaults(t *testing.T) {
	cases := []struct {
		name      string
		faults    faultproxy.Faults
		ambiguous bool
		aggregate bool
		timeout   time.Duration
		injected  func(faultproxy.Counters) int64
		perRecord bool
	}{
		{name: "record_throttle", faults: faultproxy.Faults{RecordThrottle: 0.3},
			injected: func(c faultproxy.Counters) int64 { return c.RecordsThrottled }, perRecord: true},
		{name: "record_throttle_aggregate", faults: faultproxy.Faults{RecordThrottle: 0.3}, aggregate: true,
			injected: func(c faultproxy.Counters) int64 { return c.RecordsThrottled }, perRecord: true},
		{name: "request_throttle", faults: faultproxy.Faults{RequestThrottle: 0.3},
			injected: func(c faultproxy.Counters) int64 { return c.RequestsThrottled }},
		{name: "5xx_before", faults: faultproxy.Faults{ErrorBefore: 0.3},
			injected: func(c faultproxy.Counters) int64 { return c.ErrorsBefore }},
		{name: "reset", faults: faultproxy.Faults{Reset: 0.2},
			injected: func(c faultproxy.Counters) int64 { return c.Resets }},
		{name: "5xx_after", faults: faultproxy.Faults{ErrorAfter: 0.2}, ambiguous: true,
			injected: func(c faultproxy.Counters) int64 { return c.ErrorsAfter }},
		{name: "reset_after", faults: faultproxy.Faults{ResetAfter: 0.2}, ambiguous: true,
			injected: func(c faultproxy.Counters) int64 { return c.ResetsAfter }},
		{name: "slow", faults: faultproxy.Faults{Slow: 0.15, SlowDelay: 2 * time.Second}, ambiguous: true, timeout: 400 * time.Millisecond,
			injected: func(c faultproxy.Counters) int64 { return c.Slowed }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 4, 2, 100)
			cfg := r.config()
			cfg.Aggregate = tc.aggregate
			if tc.timeout > 0 {
				cfg.RequestTimeout = conf.Duration(tc.timeout)
			}
			dups, lag := r.runFaults(cfg, r.options(), tc.faults, 20)
			if n := tc.injected(r.proxy.Counters()); n == 0 {
				t.Fatal("the fault was never injected")
			}
			if lag.Resent == 0 {
				t.Fatal("nothing resent")
			}
			if !tc.ambiguous && dups != 0 {
				t.Fatalf("%d duplicates from an unambiguous fault", dups)
			}
			if tc.perRecord && r.proxy.Counters().RecordsForwarded != int64(r.total(20))+int64(dups) && !tc.aggregate {
				t.Fatalf("kinesalite got %d entries for %d records: a partial success was resent whole",
					r.proxy.Counters().RecordsForwarded, r.total(20))
			}
		})
	}
}

func TestKinesaliteUpstreamDown(t *testing.T) {
	r := newRig(t, 4, 2, 100)
	cfg := r.config()
	r.write(0, 5)
	f := r.forwarder(cfg, r.options())
	stop := start(t, f)
	r.waitSent(f, r.total(5), 10*time.Second)
	r.proxy.Set(faultproxy.Faults{Down: true})
	r.write(5, 15) // arrives while the upstream is unreachable
	waitFor(t, 5*time.Second, "backoff state", func() bool { return f.Lag().State.Phase == Backoff })
	time.Sleep(2 * time.Second)
	lag := f.Lag()
	if lag.Records != r.total(10) || lag.OldestAge < time.Second || lag.LastError == "" {
		t.Fatalf("lag while down: %+v", lag)
	}
	r.proxy.Set(faultproxy.Faults{})
	r.write(15, 20)
	r.waitSent(f, r.total(20), 20*time.Second) // resumes by itself, within the backoff cap
	stop()
	if r.proxy.Counters().Refused == 0 {
		t.Fatal("no connection refused")
	}
	if dups := checkOrder(t, r.readBack(cfg), r.keys, 20); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}

func TestKinesaliteStreamNotFoundPausesAndResumes(t *testing.T) {
	r := newRig(t, 2, 1, 50)
	cfg := r.config()
	r.proxy.Set(faultproxy.Faults{NotFound: true})
	r.write(0, 10)
	f := r.forwarder(cfg, r.options())
	start(t, f)
	waitFor(t, 5*time.Second, "paused", func() bool {
		return strings.HasPrefix(f.Lag().State.String(), "paused: ResourceNotFoundException")
	})
	time.Sleep(time.Second)
	if lag := f.Lag(); lag.Sent != 0 || lag.Records != r.total(10) {
		t.Fatalf("lag while paused: %+v", lag)
	}
	r.proxy.Set(faultproxy.Faults{})
	r.waitSent(f, r.total(10), 10*time.Second)
	if st := f.Lag().State; st.Phase != Running {
		t.Fatalf("state %q after recovery", st)
	}
	if dups := checkOrder(t, r.readBack(cfg), r.keys, 10); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}

func TestKinesaliteNoCredentialsPauses(t *testing.T) {
	r := newRig(t, 1, 1, 10)
	cfg := r.config()
	opts := r.options()
	var haveCreds atomicBool
	opts.LoadOptions = []func(*config.LoadOptions) error{config.WithCredentialsProvider(aws.CredentialsProviderFunc(
		func(ctx context.Context) (aws.Credentials, error) {
			if !haveCreds.Load() {
				return aws.Credentials{}, fmt.Errorf("no credentials in this test")
			}
			return kinesalite.Credentials.Retrieve(ctx)
		}))}
	r.write(0, 3)
	f := r.forwarder(cfg, opts)
	start(t, f)
	waitFor(t, 5*time.Second, "paused on credentials", func() bool {
		return strings.HasPrefix(f.Lag().State.String(), "paused: NoCredentials: provide credentials")
	})
	haveCreds.Store(true)
	r.waitSent(f, r.total(3), 10*time.Second)
	checkOrder(t, r.readBack(cfg), r.keys, 3)
}

// TestKinesaliteRestart closes the forwarder mid-way and opens a new one
// on the same store: it continues from the checkpoint.
func TestKinesaliteRestart(t *testing.T) {
	r := newRig(t, 4, 2, 100)
	cfg := r.config()
	r.proxy.Set(faultproxy.Faults{RecordThrottle: 0.2})
	r.write(0, 30)
	slow := cfg
	slow.MaxBytesPerSec = 100_000 // ~3s for the 330 KB, so the restart lands mid-way
	f1 := r.forwarder(slow, r.options())
	stop := start(t, f1)
	waitFor(t, 20*time.Second, "a third forwarded", func() bool { return f1.Lag().Sent > r.total(10) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sent1 := f1.Lag().Sent
	cp, err := r.store.Checkpoints().Get(r.stream, "forwarder:"+r.target)
	if err != nil || len(cp) == 0 {
		t.Fatalf("checkpoint %v %v", cp, err)
	}
	if sent1 >= r.total(30) {
		t.Fatalf("everything went before the restart (%d)", sent1)
	}
	f2 := r.forwarder(cfg, r.options())
	start(t, f2)
	r.write(30, 40)
	deadline := time.Now().Add(25 * time.Second)
	for f2.Lag().Records != 0 || sent1+f2.Lag().Sent < r.total(40) {
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %+v", f2.Lag())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if dups := checkOrder(t, r.readBack(cfg), r.keys, 40); dups != 0 {
		t.Fatalf("%d duplicates after a clean restart", dups)
	}
}

// TestKinesaliteReshard splits and merges local shards while forwarding:
// parents drain before children, so every key keeps its order.
func TestKinesaliteReshard(t *testing.T) {
	r := newRig(t, 2, 2, 100)
	cfg := r.config()
	r.proxy.Set(faultproxy.Faults{RecordThrottle: 0.2})
	r.write(0, 10)
	f := r.forwarder(cfg, r.options())
	start(t, f)
	st, err := r.store.Stream(r.stream)
	if err != nil {
		t.Fatal(err)
	}
	info := st.Shards()[0]
	mid := shards.EvenRanges(4)[1][0] // the middle of shard 0's half
	if err := st.Split(info.ID, mid); err != nil {
		t.Fatal(err)
	}
	r.write(10, 20)
	var upper, last string
	for _, s := range st.Shards() {
		if !s.Closed && s.ParentID == info.ID && s.StartHash == mid {
			upper = s.ID
		}
		if !s.Closed && s.ParentID == "" {
			last = s.ID
		}
	}
	if err := st.Merge(upper, last); err != nil {
		t.Fatal(err)
	}
	r.write(20, 30)
	r.waitSent(f, r.total(30), 25*time.Second)
	if dups := checkOrder(t, r.readBack(cfg), r.keys, 30); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}

// TestKinesaliteThrottledShardDoesNotStallOthers throttles every record
// bound for one of two upstream shards: the other shard's keys must all
// get through meanwhile.
func TestKinesaliteThrottledShardDoesNotStallOthers(t *testing.T) {
	r := newRig(t, 2, 2, 60)
	cfg := r.config()
	half := shards.EvenRanges(2)[0][1]
	hot := func(key string) bool { return shards.HashOf(key).Cmp(half) <= 0 }
	nHot := 0
	for _, k := range r.keys {
		if hot(k) {
			nHot++
		}
	}
	r.proxy.Set(faultproxy.Faults{RecordThrottle: 1, ThrottleKey: hot})
	r.write(0, 10)
	f := r.forwarder(cfg, r.options())
	start(t, f)
	coldTotal := int64((len(r.keys) - nHot) * 10)
	waitFor(t, 15*time.Second, "the cold shard's records", func() bool {
		n := int64(0)
		for _, s := range r.readBack(cfg) {
			if !hot(s.key) {
				n++
			}
		}
		return n == coldTotal
	})
	// kinesalite shows the cold records before the forwarder has read its
	// answer to the last batch: give the lag that moment to catch up, and
	// it must then be exactly the hot shard's records.
	deadline := time.Now().Add(5 * time.Second)
	for lag := f.Lag(); lag.Records != int64(nHot*10); lag = f.Lag() {
		if time.Now().After(deadline) {
			t.Fatalf("with the hot shard throttled: %+v (hot records %d)", lag, nHot*10)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Between a backoff's end and the next throttled answer the state is
	// briefly "running"; it must be "backoff" most of the time.
	waitFor(t, 3*time.Second, "backoff state", func() bool { return f.Lag().State.Phase == Backoff })
	r.proxy.Set(faultproxy.Faults{})
	r.waitSent(f, r.total(10), 10*time.Second)
	if dups := checkOrder(t, r.readBack(cfg), r.keys, 10); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}
