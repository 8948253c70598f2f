package forwarder

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

func testCfg() Config {
	return Config{Stream: "telemetry", TargetStream: "cloud", Endpoint: "http://127.0.0.1:1",
		Linger: conf.Duration(5 * time.Millisecond), MaxInFlight: 4, RequestTimeout: conf.Duration(2 * time.Second)}
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
}

func testOpts(t testing.TB, client PutRecordsAPI) Options {
	return Options{Logger: testLogger(t), Client: client, GatewayID: "gw-test",
		BackoffBase: 5 * time.Millisecond, BackoffCap: 100 * time.Millisecond, ProbeInterval: 100 * time.Millisecond,
		CommitInterval: 20 * time.Millisecond, ShardMapInterval: 20 * time.Millisecond, Seed: 1}
}

// start runs f until the test ends (or the returned stop is called).
func start(t testing.TB, f *Forwarder) (stop func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- f.Run(context.Background()) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			err = f.Close()
			if rerr := <-errc; rerr != nil {
				t.Errorf("Run: %v", rerr)
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func payload(key string, n int) []byte { return []byte(fmt.Sprintf("%s|%06d", key, n)) }

// writeRecords appends perKey records for every key, round robin, each key
// on the shard keyShard picks.
func writeRecords(shs []*memShard, keys []string, from, to int) {
	for n := from; n < to; n++ {
		for i, k := range keys {
			shs[i%len(shs)].append(shards.Record{Key: k, Data: payload(k, n)})
		}
	}
}

// checkOrder checks completeness and per-key order of first occurrences,
// and returns how many duplicates there were.
func checkOrder(t testing.TB, got []stored, keys []string, perKey int) (dups int) {
	t.Helper()
	next := map[string]int{}
	seen := map[string]bool{}
	for _, s := range got {
		k, nStr, ok := strings.Cut(string(s.data), "|")
		if !ok || k != s.key {
			t.Fatalf("upstream record %q under key %q", s.data, s.key)
		}
		n, _ := strconv.Atoi(nStr)
		id := string(s.data)
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		if n != next[k] {
			t.Fatalf("key %s: first occurrence of %d after %d (order broken or record missing)", k, n, next[k]-1)
		}
		next[k]++
	}
	for _, k := range keys {
		if next[k] != perKey {
			t.Fatalf("key %s: %d of %d records upstream", k, next[k], perKey)
		}
	}
	return dups
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "injected " + code}
}

func TestForwarderOrderUnderRandomFailures(t *testing.T) {
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprint("aggregate=", aggregate), func(t *testing.T) {
			src := newMemSource("shardId-000000000000", "shardId-000000000001")
			shs := []*memShard{src.shard("shardId-000000000000"), src.shard("shardId-000000000001")}
			keys := keysN(50)
			const perKey = 40
			writeRecords(shs, keys, 0, perKey/2)

			kin := newFakeKinesis(t)
			var mu sync.Mutex
			rnd := rand.New(rand.NewPCG(5, 6))
			var ambiguous atomic.Int64
			kin.decide = func(call int, in *kinesis.PutRecordsInput) ([]string, bool, error) {
				mu.Lock()
				defer mu.Unlock()
				switch rnd.IntN(10) {
				case 0:
					return nil, false, apiErr("InternalFailure")
				case 1:
					ambiguous.Add(int64(len(in.Records)))
					return nil, true, apiErr("ServiceUnavailable") // stored, reported failed
				}
				codes := make([]string, len(in.Records))
				for i := range codes {
					switch rnd.IntN(4) {
					case 0:
						codes[i] = "ProvisionedThroughputExceededException"
					case 1:
						if rnd.IntN(3) == 0 {
							codes[i] = "InternalFailure"
						}
					}
				}
				return codes, false, nil
			}
			cfg := testCfg()
			cfg.Aggregate = aggregate
			ckpt := newMemCkpt()
			f, err := New(cfg, src, ckpt, testOpts(t, kin))
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, f)
			writeRecords(shs, keys, perKey/2, perKey) // live, while forwarding
			total := int64(len(keys) * perKey)
			waitFor(t, 20*time.Second, "all records acknowledged", func() bool { return f.Lag().Sent == total })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := kin.snapshot()
			if aggregate {
				got = deaggregate(t, got)
			}
			dups := checkOrder(t, got, keys, perKey)
			lag := f.Lag()
			if lag.Records != 0 || lag.Lost != 0 || lag.State.Phase != Stopped {
				t.Fatalf("lag after drain: %+v", lag)
			}
			if lag.Resent == 0 {
				t.Fatal("nothing was resent: the failures were not injected")
			}
			if aggregate {
				if dups > int(total) {
					t.Fatalf("%d duplicates", dups)
				}
			} else if int64(dups) > ambiguous.Load() {
				t.Fatalf("%d duplicates but only %d records in ambiguous failures", dups, ambiguous.Load())
			}
			cp, _ := ckpt.Get("telemetry", "forwarder:cloud")
			for _, sh := range shs {
				if cp[sh.info.ID] != sh.Last() {
					t.Fatalf("checkpoint of %s = %d, want %d", sh.info.ID, cp[sh.info.ID], sh.Last())
				}
			}
			t.Logf("dups %d, resent %d, calls %d", dups, lag.Resent, kin.callCount())
		})
	}
}

// deaggregate expands KPL aggregates in what the fake stored.
func deaggregate(t testing.TB, in []stored) []stored {
	t.Helper()
	var out []stored
	for _, s := range in {
		recs, err := DecodeAggregate(s.data, s.key)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.PartitionKey != s.key {
				t.Fatalf("aggregate under %s holds key %s", s.key, r.PartitionKey)
			}
			out = append(out, stored{r.PartitionKey, r.Data})
		}
	}
	return out
}

func TestForwarderParentsBeforeChildren(t *testing.T) {
	src := newMemSource()
	parent := src.add(shards.ShardInfo{ID: "shardId-000000000000", StartSeq: 1})
	keys := keysN(20)
	writeRecords([]*memShard{parent}, keys, 0, 10)
	parent.close()
	end := parent.Last()
	// A split: two children, each key moving to one of them.
	c1 := src.add(shards.ShardInfo{ID: "shardId-000000000001", ParentID: parent.info.ID, StartSeq: end + 1})
	c2 := src.add(shards.ShardInfo{ID: "shardId-000000000002", ParentID: parent.info.ID, StartSeq: end + 1})
	writeRecords([]*memShard{c1, c2}, keys, 10, 20)
	c1.close()
	// A merge of the two children.
	m := src.add(shards.ShardInfo{ID: "shardId-000000000003", ParentID: c1.info.ID, AdjacentParentID: c2.info.ID, StartSeq: c1.Last() + 1})
	c2.close()
	writeRecords([]*memShard{m}, keys, 20, 30)

	kin := newFakeKinesis(t)
	rnd := rand.New(rand.NewPCG(1, 1))
	var mu sync.Mutex
	kin.decide = func(_ int, in *kinesis.PutRecordsInput) ([]string, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		codes := make([]string, len(in.Records))
		for i := range codes {
			if rnd.IntN(3) == 0 {
				codes[i] = "ProvisionedThroughputExceededException"
			}
		}
		return codes, false, nil
	}
	f, err := New(testCfg(), src, newMemCkpt(), testOpts(t, kin))
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	waitFor(t, 20*time.Second, "everything sent", func() bool { return f.Lag().Sent == int64(len(keys)*30) })
	got := kin.snapshot()
	if dups := checkOrder(t, got, keys, 30); dups != 0 {
		t.Fatalf("%d duplicates without ambiguous failures", dups)
	}
	// Stronger than per-key order: no child record went before every
	// parent record was acknowledged.
	phase := func(s stored) int { n, _ := strconv.Atoi(strings.Split(string(s.data), "|")[1]); return n / 10 }
	for i := 1; i < len(got); i++ {
		if phase(got[i]) < phase(got[i-1]) {
			t.Fatalf("record %q (generation %d) stored after %q (generation %d)", got[i].data, phase(got[i]), got[i-1].data, phase(got[i-1]))
		}
	}
}

func TestForwarderPermanentErrorPausesAndResumes(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	keys := keysN(10)
	writeRecords([]*memShard{sh}, keys, 0, 5)
	kin := newFakeKinesis(t)
	var broken atomic.Value
	broken.Store("ResourceNotFoundException")
	kin.decide = func(int, *kinesis.PutRecordsInput) ([]string, bool, error) {
		if code := broken.Load().(string); code != "" {
			return nil, false, apiErr(code)
		}
		return nil, false, nil
	}
	f, err := New(testCfg(), src, newMemCkpt(), testOpts(t, kin))
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	waitFor(t, 5*time.Second, "paused state", func() bool {
		return strings.HasPrefix(f.Lag().State.String(), "paused: ResourceNotFoundException: create the upstream stream")
	})
	for _, code := range []string{"AccessDeniedException", "UnrecognizedClientException", "KMSAccessDeniedException"} {
		broken.Store(code)
		waitFor(t, 5*time.Second, code, func() bool { return strings.HasPrefix(f.Lag().State.String(), "paused: "+code) })
	}
	calls := kin.callCount
	c0 := calls()
	time.Sleep(300 * time.Millisecond)
	if n := calls() - c0; n > 5 {
		t.Fatalf("%d requests in 300ms while paused: probing is not paced", n)
	}
	lag := f.Lag()
	if lag.Records != 50 || lag.Sent != 0 || lag.Bytes == 0 || lag.OldestAge <= 0 || !strings.Contains(lag.LastError, "KMSAccessDeniedException") {
		t.Fatalf("lag while paused: %+v", lag)
	}
	broken.Store("")
	waitFor(t, 5*time.Second, "resumed and drained", func() bool { return f.Lag().Sent == 50 })
	if st := f.Lag().State; st.Phase != Running {
		t.Fatalf("state after recovery %q", st)
	}
	if dups := checkOrder(t, kin.snapshot(), keys, 5); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}

func TestForwarderTrimmedRecordsCountAsLost(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	for n := range 100 {
		sh.append(shards.Record{Key: "k", Data: payload("k", n)})
	}
	ckpt := newMemCkpt()
	ckpt.Commit("telemetry", "forwarder:cloud", sh.info.ID, 10) // 1..10 sent before
	sh.trimTo(50)                                               // 11..49 deleted unsent
	kin := newFakeKinesis(t)
	f, err := New(testCfg(), src, ckpt, testOpts(t, kin))
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	waitFor(t, 5*time.Second, "the rest sent", func() bool { return f.Lag().Sent == 51 })
	if lost := f.Lag().Lost; lost != 39 {
		t.Fatalf("lost %d, want 39", lost)
	}
	got := kin.snapshot()
	if string(got[0].data) != string(payload("k", 49)) || len(got) != 51 {
		t.Fatalf("upstream starts with %q, %d records", got[0].data, len(got))
	}
}

func TestForwarderNewStartsAtTrimHorizonWithoutLoss(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	for n := range 20 {
		sh.append(shards.Record{Key: "k", Data: payload("k", n)})
	}
	sh.trimTo(11)
	kin := newFakeKinesis(t)
	f, _ := New(testCfg(), src, newMemCkpt(), testOpts(t, kin))
	start(t, f)
	waitFor(t, 5*time.Second, "sent", func() bool { return f.Lag().Sent == 10 })
	if f.Lag().Lost != 0 {
		t.Fatal("a new forwarder counts retention before its time as lost")
	}
}

func TestForwarderRestartFromCheckpoint(t *testing.T) {
	src := newMemSource("shardId-000000000000", "shardId-000000000001")
	shs := []*memShard{src.shard("shardId-000000000000"), src.shard("shardId-000000000001")}
	keys := keysN(30)
	const perKey = 30
	writeRecords(shs, keys, 0, perKey)
	kin := newFakeKinesis(t)
	kin.delay = 20 * time.Millisecond
	ckpt := newMemCkpt()
	cfg := testCfg()
	cfg.MaxInFlight = 2

	f1, _ := New(cfg, src, ckpt, testOpts(t, kin))
	stop1 := start(t, f1)
	waitFor(t, 10*time.Second, "some progress", func() bool { return f1.Lag().Sent > 200 })
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	sent1 := f1.Lag().Sent
	cp, _ := ckpt.Get("telemetry", "forwarder:cloud")
	if cp[shs[0].info.ID]+cp[shs[1].info.ID] == 0 {
		t.Fatal("no checkpoint committed at Close")
	}
	f2, _ := New(cfg, src, ckpt, testOpts(t, kin))
	start(t, f2)
	total := int64(len(keys) * perKey)
	waitFor(t, 10*time.Second, "the rest", func() bool { return f2.Lag().Records == 0 && sent1+f2.Lag().Sent >= total })
	// Close drained the requests in flight and committed: nothing is sent twice.
	if dups := checkOrder(t, kin.snapshot(), keys, perKey); dups != 0 {
		t.Fatalf("%d duplicates after a clean restart", dups)
	}
}

func TestForwarderAbandonsSlowRequestsAtClose(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	keys := keysN(5)
	writeRecords([]*memShard{sh}, keys, 0, 4)
	kin := newFakeKinesis(t)
	var slow atomic.Bool
	slow.Store(true)
	kin.decide = func(int, *kinesis.PutRecordsInput) ([]string, bool, error) {
		if slow.Load() {
			time.Sleep(300 * time.Millisecond)
		}
		return nil, false, nil
	}
	ckpt := newMemCkpt()
	opts := testOpts(t, kin)
	opts.DrainTimeout = 50 * time.Millisecond
	cfg := testCfg()
	cfg.RequestTimeout = conf.Duration(100 * time.Millisecond)
	f1, _ := New(cfg, src, ckpt, opts)
	stop := start(t, f1)
	time.Sleep(150 * time.Millisecond)
	t0 := time.Now()
	stop()
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	slow.Store(false)
	f2, _ := New(cfg, src, ckpt, opts)
	start(t, f2)
	waitFor(t, 5*time.Second, "all", func() bool { return f2.Lag().Records == 0 && f2.Lag().Sent > 0 })
	checkOrder(t, kin.snapshot(), keys, 4) // duplicates allowed: the slow ones may have been stored
}

func TestForwarderOversizeRecordIsLost(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	sh.append(shards.Record{Key: "k", Data: payload("k", 0)})
	sh.append(shards.Record{Key: "k", Data: make([]byte, 900_000)}) // fine raw, > 1 MiB as base64 JSON
	sh.append(shards.Record{Key: "k", Data: payload("k", 1)})
	kin := newFakeKinesis(t)
	cfg := testCfg()
	cfg.Envelope = EnvelopeJSON
	f, _ := New(cfg, src, newMemCkpt(), testOpts(t, kin))
	start(t, f)
	waitFor(t, 5*time.Second, "the two that fit", func() bool { return f.Lag().Sent == 2 })
	if lag := f.Lag(); lag.Lost != 1 || lag.Records != 0 {
		t.Fatalf("lag %+v, want 1 lost", lag)
	}
}

func TestForwarderRateLimit(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	keys := keysN(50)
	total := 0
	for n := range 5 {
		for _, k := range keys {
			r := shards.Record{Key: k, Data: append(payload(k, n), make([]byte, 990)...)}
			sh.append(r)
			total += len(r.Key) + len(r.Data)
		}
	}
	kin := newFakeKinesis(t)
	cfg := testCfg()
	const rate = 100_000
	cfg.MaxBytesPerSec = rate
	f, _ := New(cfg, src, newMemCkpt(), testOpts(t, kin))
	t0 := time.Now()
	start(t, f)
	waitFor(t, 10*time.Second, "all", func() bool { return f.Lag().Sent == 250 })
	// The bucket starts with a second's worth and may go into debt by one
	// batch of at most half a second's worth (pacing.go, send.go): the
	// rest cannot go faster than the rate, and timers never fire early.
	least := time.Duration(float64(total-rate-rate/2) / rate * float64(time.Second))
	if d := time.Since(t0); d < least || d > least+3*time.Second {
		t.Fatalf("%d bytes at %d B/s took %v, want at least %v and not much more", total, rate, d, least)
	}
}

func TestForwarderWaitsForLocalStream(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	src.err = shards.ErrStreamNotFound
	kin := newFakeKinesis(t)
	f, _ := New(testCfg(), src, newMemCkpt(), testOpts(t, kin))
	if st := f.Lag().State; st.Phase != Stopped {
		t.Fatalf("state before Run %q", st)
	}
	start(t, f)
	waitFor(t, 5*time.Second, "paused on the local stream", func() bool {
		return strings.HasPrefix(f.Lag().State.String(), "paused: local stream telemetry unavailable")
	})
	src.mu.Lock()
	src.err = nil
	src.mu.Unlock()
	src.shard("shardId-000000000000").append(shards.Record{Key: "k", Data: payload("k", 0)})
	waitFor(t, 5*time.Second, "sent", func() bool { return f.Lag().Sent == 1 && f.Lag().State.Phase == Running })
}

func TestForwarderLingerBatchesLiveRecords(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	kin := newFakeKinesis(t)
	cfg := testCfg()
	cfg.Linger = conf.Duration(500 * time.Millisecond)
	f, _ := New(cfg, src, newMemCkpt(), testOpts(t, kin))
	start(t, f)
	t0 := time.Now()
	for i := range 20 {
		sh.append(shards.Record{Key: fmt.Sprint("k", i), Data: payload(fmt.Sprint("k", i), 0)})
		time.Sleep(time.Millisecond)
	}
	spread := time.Since(t0)
	waitFor(t, 5*time.Second, "sent", func() bool { return f.Lag().Sent == 20 })
	if spread < 400*time.Millisecond && kin.callCount() > 2 {
		t.Fatalf("20 records within %v took %d requests with a 500ms linger", spread, kin.callCount())
	}
	if d := time.Since(t0); d < 450*time.Millisecond {
		t.Fatalf("sent after %v, before the linger", d)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{Stream: "s"}, newMemSource(), newMemCkpt(), Options{Client: newFakeKinesis(t)}); err == nil ||
		!strings.Contains(err.Error(), "target_stream") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunTwiceAndCloseBeforeRun(t *testing.T) {
	f, _ := New(testCfg(), newMemSource(), newMemCkpt(), testOpts(t, newFakeKinesis(t)))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	g, _ := New(testCfg(), newMemSource(), newMemCkpt(), testOpts(t, newFakeKinesis(t)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	time.Sleep(20 * time.Millisecond)
	if err := g.Run(ctx); err == nil {
		t.Fatal("second Run accepted")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	g.Close()
}

var _ = aws.String
