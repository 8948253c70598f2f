package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// runToEnd runs a StopAtEnd consumer and fails if Run does not return by
// itself.
func runToEnd(t *testing.T, cfg Config, h Handler) {
	t.Helper()
	cfg.StopAtEnd = true
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Run(ctx, h); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run with StopAtEnd did not stop by itself")
	}
}

// delivery is one delivered record, in delivery order.
type delivery struct {
	shard string
	seq   uint64
	data  string
}

type recorder struct {
	mu  sync.Mutex
	got []delivery
}

func (r *recorder) handle(_ context.Context, rec Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, delivery{rec.ShardID, rec.SeqNum, string(rec.Data)})
	return nil
}

func (r *recorder) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func TestEphemeralStopAtEndLeavesNothingBehind(t *testing.T) {
	g := startGateway(t)
	g.createStream("eph", 3)
	counts := map[string]int{}
	g.publish("eph", 300, 10, counts)
	col := newCollector(300)
	var once sync.Once
	runToEnd(t, Config{Endpoint: g.endpoint(), Stream: "eph", Ephemeral: true, WaitMillis: 500},
		func(ctx context.Context, r Record) error {
			// Records appended after the start are not part of the run.
			once.Do(func() { g.publish("eph", 60, 10, counts) })
			return col.handle(ctx, r)
		})
	col.wait(t, time.Second)
	col.mu.Lock()
	total := col.total
	col.mu.Unlock()
	if total != 300 {
		t.Fatalf("delivered %d records, want the 300 stored at the start", total)
	}
	if cs := g.store.Checkpoints().Consumers("eph"); len(cs) != 0 {
		t.Fatalf("an ephemeral consumer left consumers behind: %+v", cs)
	}
	// Checkpoint is a no-op rather than an error.
	c, _ := New(Config{Endpoint: g.endpoint(), Stream: "eph", Ephemeral: true})
	if err := c.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSequentialReadsShardByShardParentsFirst(t *testing.T) {
	g := startGateway(t)
	st := g.createStream("seq", 2)
	counts := map[string]int{}
	g.publish("seq", 200, 12, counts)
	if err := st.Split("shardId-000000000001", shards.HashKey{Hi: 3 << 62}); err != nil {
		t.Fatal(err)
	}
	g.publish("seq", 200, 12, counts)
	rec := &recorder{}
	col := newCollector(400)
	runToEnd(t, Config{Endpoint: g.endpoint(), Stream: "seq", Ephemeral: true, Sequential: true, Limit: 17},
		func(ctx context.Context, r Record) error {
			_ = rec.handle(ctx, r)
			return col.handle(ctx, r)
		})
	col.wait(t, time.Second)
	got := rec.all()
	if len(got) != 400 {
		t.Fatalf("delivered %d, want 400", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if b.shard < a.shard || (b.shard == a.shard && b.seq <= a.seq) {
			t.Fatalf("delivery %d: %s/%d after %s/%d; want shard by shard in id order", i, b.shard, b.seq, a.shard, a.seq)
		}
	}
}

func TestFromSequenceNumberClamps(t *testing.T) {
	g := startGateway(t)
	g.createStream("from", 2)
	counts := map[string]int{}
	g.publish("from", 40, 8, counts)
	st, _ := g.store.Stream("from")
	for _, from := range []uint64{0, 1, 5, 15, 1000} {
		t.Run(fmt.Sprint(from), func(t *testing.T) {
			rec := &recorder{}
			runToEnd(t, Config{Endpoint: g.endpoint(), Stream: "from", Ephemeral: true, From: fmt.Sprint(from)}, rec.handle)
			// The shards' sequence numbers share the stream's log: count
			// each one's own records from From on.
			want := 0
			for _, info := range st.Shards() {
				sh, _ := st.Shard(info.ID)
				n, err := sh.RecordsIn(max(from, 1), sh.Last()+1)
				if err != nil {
					t.Fatal(err)
				}
				want += int(n)
			}
			if from == 5 && want >= 40 {
				t.Fatalf("From 5 should skip some of the 40 records, counted %d", want)
			}
			got := rec.all()
			if len(got) != want {
				t.Fatalf("From %d delivered %d records, want %d", from, len(got), want)
			}
			for _, d := range got {
				if d.seq < from {
					t.Fatalf("From %d delivered %s/%d", from, d.shard, d.seq)
				}
			}
		})
	}
	// Beyond the end means the end: a record appended later is read even
	// though its number is below From.
	rec := &recorder{}
	_, r := runConsumer(t, Config{Endpoint: g.endpoint(), Stream: "from", Ephemeral: true, From: "1000", WaitMillis: 500}, rec.handle)
	time.Sleep(200 * time.Millisecond)
	if _, err := g.store.Append(context.Background(), "from", &shards.Record{Key: "late", Data: []byte("late")}, shards.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(rec.all()) == 1 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := rec.all(); got[0].data != "late" {
		t.Fatalf("got %+v", got)
	}
}

func TestStopAtEndWithNothingToRead(t *testing.T) {
	g := startGateway(t)
	g.createStream("empty", 2)
	rec := &recorder{}
	runToEnd(t, Config{Endpoint: g.endpoint(), Stream: "empty", Ephemeral: true}, rec.handle)
	counts := map[string]int{}
	g.publish("empty", 20, 4, counts)
	runToEnd(t, Config{Endpoint: g.endpoint(), Stream: "empty", Ephemeral: true, From: FromLatest}, rec.handle)
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("delivered %d records", len(got))
	}
}

// A registered consumer told to ignore its checkpoints starts at From in
// every shard, and commits those starts at once: a run stopped early
// leaves the shards it never reached rewound, not at their old positions.
func TestIgnoreCheckpointsPinsTheNewStart(t *testing.T) {
	g := startGateway(t)
	g.createStream("rw", 2)
	counts := map[string]int{}
	g.publish("rw", 100, 10, counts)
	cfg := Config{Endpoint: g.endpoint(), Stream: "rw", Name: "app", CheckpointInterval: -1}
	first := &recorder{}
	runToEnd(t, cfg, first.handle)
	if len(first.all()) != 100 {
		t.Fatalf("first run delivered %d", len(first.all()))
	}
	// Rewind, stop after 7 records (all from the first shard: sequential).
	rewind := cfg
	rewind.IgnoreCheckpoints, rewind.From, rewind.Sequential = true, FromTrimHorizon, true
	second := &recorder{}
	runToEnd(t, rewind, func(ctx context.Context, r Record) error {
		if len(second.all()) == 7 {
			return ErrStop
		}
		return second.handle(ctx, r)
	})
	// The next normal run continues right after those 7, and from the
	// start of the other shard: every record once over both runs.
	third := &recorder{}
	runToEnd(t, cfg, third.handle)
	seen := map[string]int{}
	for _, d := range append(second.all(), third.all()...) {
		seen[fmt.Sprintf("%s/%d", d.shard, d.seq)]++
	}
	if len(seen) != 100 {
		t.Fatalf("rewound runs delivered %d distinct records, want 100", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
	// Latest with IgnoreCheckpoints skips everything, durably.
	g.publish("rw", 10, 10, counts)
	skip := cfg
	skip.IgnoreCheckpoints, skip.From = true, FromLatest
	runToEnd(t, skip, first.handle)
	none := &recorder{}
	runToEnd(t, cfg, none.handle)
	if n := len(none.all()); n != 0 {
		t.Fatalf("after skipping to latest, %d records delivered", n)
	}
}

func TestModeConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Endpoint: "http://x", Stream: "s", Name: "n", Ephemeral: true},
		{Endpoint: "http://x", Stream: "s", Ephemeral: true, Sequential: true},
		{Endpoint: "http://x", Stream: "s", Ephemeral: true, From: "-3"},
		{Endpoint: "http://x", Stream: "s", Ephemeral: true, From: "12abc"},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := New(Config{Endpoint: "http://x", Stream: "s", Ephemeral: true, From: "42", StopAtEnd: true, Sequential: true}); err != nil {
		t.Fatal(err)
	}
}
