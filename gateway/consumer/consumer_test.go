package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var secret = []byte("consumer-test-secret-0123456789ab")

// gateway is a store and an API server listening on a fixed loopback
// address, so it can be restarted under the same endpoint.
type gateway struct {
	t      testing.TB
	dir    string
	addr   string
	store  *shards.Store
	srv    *api.Server
	opts   shards.Options
	secret []byte
}

func startGateway(t testing.TB, streams ...shards.StreamConfig) *gateway {
	t.Helper()
	g := &gateway{t: t, dir: t.TempDir(), addr: "127.0.0.1:0", secret: secret, opts: shards.Options{
		Streams:       streams,
		DefaultStream: shards.StreamConfig{Rate: shards.RateConfig{OnLimit: shards.OnLimitBackpress}}.WithDefaults(),
		Durability:    shards.Durability{Fsync: shards.FsyncAlways},
	}}
	g.start()
	g.addr = g.srv.Addr().String()
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	st, err := shards.Open(g.dir, g.opts)
	if err != nil {
		g.t.Fatal(err)
	}
	g.store = st
	if g.srv, err = api.New(api.Config{Listen: g.addr}, st, api.Options{Secret: g.secret}); err != nil {
		g.t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err = g.srv.Start(); err == nil {
			return
		}
		if i == 50 { // the old port may linger briefly
			g.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) stop() {
	if g.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.srv.Close(ctx); err != nil {
		g.t.Errorf("close api: %v", err)
	}
	if err := g.store.Close(); err != nil {
		g.t.Errorf("close store: %v", err)
	}
	g.srv = nil
}

func (g *gateway) endpoint() string { return "http://" + g.addr }

func (g *gateway) createStream(name string, n int) *shards.Stream {
	g.t.Helper()
	st, err := g.store.CreateStream(shards.StreamConfig{Name: name, Shards: n})
	if err != nil {
		g.t.Fatal(err)
	}
	return st
}

// publish appends n records for keys key0..key(k-1), each carrying its
// key's running count, and returns the count per key afterwards.
func (g *gateway) publish(stream string, n, keys int, counts map[string]int) {
	g.t.Helper()
	recs := make([]*shards.Record, 0, n)
	for i := range n {
		k := fmt.Sprintf("key%d", i%keys)
		recs = append(recs, &shards.Record{Key: k, Data: []byte(fmt.Sprintf("%s:%d", k, counts[k]))})
		counts[k]++
	}
	for len(recs) > 0 {
		batch := recs[:min(len(recs), 100)]
		recs = recs[len(batch):]
		_, errs := g.store.AppendBatch(context.Background(), stream, batch, nil)
		for _, err := range errs {
			if err != nil {
				g.t.Fatal(err)
			}
		}
	}
}

// collector records deliveries and checks per-key order as they happen.
type collector struct {
	mu      sync.Mutex
	next    map[string]int // next expected count per key
	seen    map[string]int // delivered count per "shard/seq"
	total   int
	errs    []string
	reached chan struct{}
	want    int
}

func newCollector(want int) *collector {
	return &collector{next: map[string]int{}, seen: map[string]int{}, want: want, reached: make(chan struct{})}
}

func (c *collector) handle(_ context.Context, r Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	if _, err := fmt.Sscanf(strings.SplitN(string(r.Data), ":", 2)[1], "%d", &n); err != nil {
		c.errs = append(c.errs, "bad data "+string(r.Data))
	}
	id := r.ShardID + "/" + r.Seq
	c.seen[id]++
	if c.seen[id] > 1 {
		c.errs = append(c.errs, "duplicate "+id)
	} else if n != c.next[r.Key] {
		c.errs = append(c.errs, fmt.Sprintf("key %s: got #%d, want #%d (shard %s seq %s)", r.Key, n, c.next[r.Key], r.ShardID, r.Seq))
	}
	if n >= c.next[r.Key] {
		c.next[r.Key] = n + 1
	}
	c.total++
	if c.total == c.want {
		close(c.reached)
	}
	return nil
}

func (c *collector) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-c.reached:
	case <-time.After(d):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("delivered %d of %d records; errors: %v", c.total, c.want, c.errs)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("%d order errors, first: %v", len(c.errs), c.errs[:min(5, len(c.errs))])
	}
}

type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func runConsumer(t testing.TB, cfg Config, h Handler) (*Consumer, *runner) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx, h) }()
	t.Cleanup(func() { r.stop(t) })
	return c, r
}

func (r *runner) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func TestOrderedAcrossReshard(t *testing.T) {
	g := startGateway(t)
	st := g.createStream("ord", 2)
	counts := map[string]int{}
	// Parents full of records, then a split and a merge, each child
	// getting records too, all before the consumer starts: reading the
	// children early would break per-key order.
	g.publish("ord", 300, 20, counts)
	if err := st.Split("shardId-000000000000", shards.HashKey{Hi: 1 << 62}); err != nil {
		t.Fatal(err)
	}
	g.publish("ord", 300, 20, counts)
	if err := st.Merge("shardId-000000000002", "shardId-000000000003"); err != nil {
		t.Fatal(err)
	}
	g.publish("ord", 300, 20, counts)
	col := newCollector(1200)
	runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "ord", Name: "app", WaitMillis: 1000, Limit: 37}, col.handle)
	// And one more split while it reads.
	time.Sleep(20 * time.Millisecond)
	if err := st.Split("shardId-000000000001", shards.HashKey{Hi: 3 << 62}); err != nil {
		t.Fatal(err)
	}
	g.publish("ord", 300, 20, counts)
	col.wait(t, 20*time.Second)
}

func TestResumeAfterConsumerRestart(t *testing.T) {
	g := startGateway(t)
	g.createStream("rs", 3)
	counts := map[string]int{}
	g.publish("rs", 500, 10, counts)

	col := newCollector(500)
	var mu sync.Mutex
	n := 0
	stopAt := 180
	// First run: stop after 180 records via ErrStop; the 181st is not
	// delivered and must come again.
	c1, r1 := runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "rs", Name: "app", CheckpointEvery: 25, CheckpointInterval: -1},
		func(ctx context.Context, r Record) error {
			mu.Lock()
			defer mu.Unlock()
			if n == stopAt {
				return ErrStop
			}
			n++
			return col.handle(ctx, r)
		})
	select {
	case err := <-r1.done:
		close(r1.done)
		if err != nil {
			t.Fatalf("Run after ErrStop = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ErrStop did not stop Run")
	}
	_ = c1
	// Second run, a new Consumer with the same name: the rest, once.
	runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "rs", Name: "app"}, col.handle)
	col.wait(t, 10*time.Second)
}

func TestResumeAfterGatewayRestart(t *testing.T) {
	g := startGateway(t)
	g.createStream("gw", 2)
	counts := map[string]int{}
	g.publish("gw", 200, 10, counts)
	col := newCollector(600)
	runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "gw", Name: "app", CheckpointEvery: 10, WaitMillis: 500}, col.handle)
	waitFor(t, func() bool { col.mu.Lock(); defer col.mu.Unlock(); return col.total == 200 })

	// The gateway goes away while the consumer long-polls, comes back on
	// the same address with the same data, and more records arrive.
	g.stop()
	time.Sleep(300 * time.Millisecond)
	g.start()
	g.publish("gw", 200, 10, counts)
	waitFor(t, func() bool { col.mu.Lock(); defer col.mu.Unlock(); return col.total == 400 })

	// Again with a gateway whose iterator key changed (a data dir restored
	// without api.key): the old iterators are refused and replaced.
	g.stop()
	g.secret = []byte("a different key")
	g.start()
	g.publish("gw", 200, 10, counts)
	col.wait(t, 10*time.Second)
}

func TestRestartBothResumesExactly(t *testing.T) {
	g := startGateway(t)
	g.createStream("both", 2)
	counts := map[string]int{}
	g.publish("both", 300, 10, counts)
	col := newCollector(600)
	_, r := runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "both", Name: "app", CheckpointInterval: -1}, col.handle)
	waitFor(t, func() bool { col.mu.Lock(); defer col.mu.Unlock(); return col.total == 300 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.stop()
	g.start()
	g.publish("both", 300, 10, counts)
	runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "both", Name: "app"}, col.handle)
	col.wait(t, 10*time.Second)
}

func TestFromLatestAndCheckpointOnDemand(t *testing.T) {
	g := startGateway(t)
	g.createStream("lt", 2)
	counts := map[string]int{}
	g.publish("lt", 100, 5, counts)
	got := make(chan Record, 100)
	var c *Consumer
	c, r := runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "lt", Name: "tail", From: FromLatest, CheckpointInterval: -1},
		func(ctx context.Context, rec Record) error {
			if err := c.Checkpoint(ctx); err != nil {
				return err
			}
			got <- rec
			return nil
		})
	// Wait until the tips are pinned, then publish one record.
	waitFor(t, func() bool {
		cks, err := c.cl.GetCheckpoints(context.Background(), "lt", "tail")
		return err == nil && len(cks) == 2 && cks[0].Status == "OK" && cks[1].Status == "OK"
	})
	_, err := g.store.Append(context.Background(), "lt", &shards.Record{Key: "new", Data: []byte("fresh"), Topic: "t/1", ClientID: "dev", QoS: 1,
		Props: []shards.UserProperty{{Key: "a", Value: "b"}}}, shards.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	select {
	case rec = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("latest consumer got nothing")
	}
	if string(rec.Data) != "fresh" || rec.Topic != "t/1" || rec.ClientID != "dev" || rec.QoS != 1 || len(rec.Props) != 1 || rec.Arrival.IsZero() {
		t.Fatalf("record %+v", rec)
	}
	// The handler's Checkpoint covers the record before this one: stop,
	// then the server position equals the record's predecessor or the record.
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	cks, _ := c.cl.GetCheckpoints(context.Background(), "lt", "tail")
	for _, ck := range cks {
		if ck.ShardId == rec.ShardID && ck.SequenceNumber != rec.Seq {
			t.Fatalf("checkpoint of %s = %s after delivering %s", ck.ShardId, ck.SequenceNumber, rec.Seq)
		}
	}
	select {
	case extra := <-got:
		t.Fatalf("old record delivered to a latest consumer: %s", extra.Data)
	default:
	}
}

func TestTrimmedCheckpointContinues(t *testing.T) {
	g := startGateway(t, shards.StreamConfig{Name: "tr", Shards: 1, Retention: conf.Duration(time.Second),
		SegmentSize: 4 * conf.KiB, MaxRecordSize: 2 * conf.KiB, Rate: shards.RateConfig{OnLimit: shards.OnLimitBackpress}})
	for range 30 {
		if _, err := g.store.Append(context.Background(), "tr", &shards.Record{Key: "k", Data: bytes.Repeat([]byte("x"), 1000)}, shards.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.store.Checkpoints().Register("tr", "slow"); err != nil {
		t.Fatal(err)
	}
	if err := g.store.Checkpoints().Commit("tr", "slow", "shardId-000000000000", 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	// A fresh record keeps the segment being written alive: retention
	// closes it (its oldest record is past retention) but may not delete it.
	if _, err := g.store.Append(context.Background(), "tr", &shards.Record{Key: "k", Data: []byte("fresh")}, shards.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	g.store.EnforceRetention()
	st, _ := g.store.Stream("tr")
	sh, _ := st.Shard("shardId-000000000000")
	th := sh.TrimHorizon()
	if th <= 3 {
		t.Fatalf("nothing trimmed (trim horizon %d)", th)
	}
	var logs syncBuffer
	first := make(chan uint64, 1)
	runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "tr", Name: "slow", Logger: zerolog.New(&logs)},
		func(_ context.Context, r Record) error {
			select {
			case first <- r.SeqNum:
			default:
			}
			return nil
		})
	select {
	case s := <-first:
		if s != th {
			t.Fatalf("first record %d, want the trim horizon %d", s, th)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
	}
	want := fmt.Sprintf(`"records_lost":%d`, th-1-2)
	waitFor(t, func() bool { return strings.Contains(logs.String(), want) })
}

func TestConfigAndErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Stream: "s", Name: "n"},
		{Endpoint: "http://x", Name: "n"},
		{Endpoint: "http://x", Stream: "s"},
		{Endpoint: "http://x", Stream: "s", Name: "n", From: "yesterday"},
		{Endpoint: "http://x", Stream: "s", Name: "n", WaitMillis: 30000},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	g := startGateway(t)
	c, err := New(Config{Endpoint: g.endpoint(), Stream: "missing", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Run(ctx, func(context.Context, Record) error { return nil })
	var ae *APIError
	if !errors.As(err, &ae) || ae.Type != "ResourceNotFoundException" {
		t.Fatalf("Run on a missing stream = %v", err)
	}

	// A handler error ends Run with it, after committing what came before.
	g.createStream("h", 1)
	counts := map[string]int{}
	g.publish("h", 10, 1, counts)
	boom := errors.New("boom")
	c, _ = New(Config{Endpoint: g.endpoint(), Stream: "h", Name: "n", CheckpointInterval: -1})
	n := 0
	err = c.Run(ctx, func(context.Context, Record) error {
		if n == 4 {
			return boom
		}
		n++
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the handler's error", err)
	}
	cks, _ := c.cl.GetCheckpoints(ctx, "h", "n")
	if len(cks) != 1 || cks[0].SequenceNumber != shards.FormatSeq("shardId-000000000000", 4) {
		t.Fatalf("checkpoint after a handler error: %+v", cks)
	}
	// The gateway unreachable: Run keeps trying until ctx ends.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	c, _ = New(Config{Endpoint: "http://" + dead, Stream: "h", Name: "n"})
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := c.Run(short, func(context.Context, Record) error { return nil }); err != nil {
		t.Fatalf("Run against a dead gateway ended with %v, want nil at ctx end", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
