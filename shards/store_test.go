package shards

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
)

// fakeClock is a settable clock for retention and rate tests.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func testStream(name string, n int) StreamConfig {
	c := StreamConfig{Name: name, Shards: n}.WithDefaults()
	c.Rate = RateConfig{} // unlimited unless a test says otherwise
	c.Rate = c.Rate.WithDefaults()
	c.Rate.RecordsPerSec, c.Rate.BytesPerSec = 0, 0
	return c
}

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	opts.NoRetentionLoop = true
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func put(t *testing.T, s *Store, stream, key string, data string) Appended {
	t.Helper()
	a, err := s.Append(context.Background(), stream, &Record{Key: key, Data: []byte(data)}, AppendOptions{})
	if err != nil {
		t.Fatalf("append %s/%s: %v", stream, key, err)
	}
	return a
}

// readAll reads every shard of a stream, parents before children, and
// returns records per key in the order a Kinesis reader would see them.
func readAll(t *testing.T, st *Stream) map[string][]Record {
	t.Helper()
	byKey := map[string][]Record{}
	done := map[string]bool{}
	infos := st.Shards()
	for len(done) < len(infos) {
		progressed := false
		for _, info := range infos {
			if done[info.ID] {
				continue
			}
			ready := true
			for _, p := range []string{info.ParentID, info.AdjacentParentID} {
				if p != "" && !done[p] {
					if _, err := st.Shard(p); err == nil {
						ready = false
					}
				}
			}
			if !ready {
				continue
			}
			sh, _ := st.Shard(info.ID)
			for from := sh.TrimHorizon(); ; {
				recs, next, err := sh.Read(from, 100, 1<<20)
				if err != nil {
					t.Fatalf("read %s: %v", info.ID, err)
				}
				if next <= from {
					break
				}
				for _, r := range recs {
					if !info.Contains(HashOf(r.Key)) {
						t.Fatalf("record key %q in shard %s outside its range", r.Key, info.ID)
					}
					byKey[r.Key] = append(byKey[r.Key], r)
				}
				from = next
			}
			done[info.ID], progressed = true, true
		}
		if !progressed {
			t.Fatal("shard graph has a cycle or a missing parent")
		}
	}
	return byKey
}

func TestAppendReadRoundTripAndRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{Streams: []StreamConfig{testStream("telemetry", 4)}})
	rec := &Record{Key: "dev-1", Data: []byte("hello"), Topic: "devices/dev-1/telemetry", ClientID: "dev-1", QoS: 1,
		Props: []UserProperty{{Key: "unit", Value: "C"}}}
	a, err := s.Append(context.Background(), "telemetry", rec, AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := put(t, s, "telemetry", "dev-1", "again")
	if a.ShardID != b.ShardID || b.Seq <= a.Seq {
		t.Fatalf("same key: %+v then %+v", a, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{Streams: []StreamConfig{testStream("telemetry", 4)}})
	defer s.Close()
	st, _ := s.Stream("telemetry")
	sh, _ := st.Shard(a.ShardID)
	recs, _, err := sh.Read(a.Seq, 10, 1<<20)
	if err != nil || len(recs) != 2 {
		t.Fatalf("read after restart: %v %v", recs, err)
	}
	got := recs[0]
	if got.Key != "dev-1" || string(got.Data) != "hello" || got.Topic != rec.Topic || got.ClientID != "dev-1" ||
		got.QoS != 1 || len(got.Props) != 1 || got.Props[0].Value != "C" || got.Arrival == 0 {
		t.Fatalf("record changed on disk: %+v", got)
	}
	c := put(t, s, "telemetry", "dev-1", "third")
	if c.Seq <= b.Seq {
		t.Fatalf("sequence went back after restart: %d after %d", c.Seq, b.Seq)
	}
	// The hash range decides the shard.
	info := sh.Info()
	if !info.Contains(HashOf("dev-1")) {
		t.Fatal("record stored outside its hash range")
	}
}

func TestAppendValidation(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{testStream("s", 1)}})
	defer s.Close()
	ctx := context.Background()
	big := make([]byte, (1<<20)+1)
	for _, tc := range []struct {
		name string
		rec  Record
		want error
	}{
		{"empty key", Record{Key: "", Data: []byte("x")}, ErrInvalidKey},
		{"key 257 chars", Record{Key: string(make([]rune, 257)), Data: []byte("x")}, ErrInvalidKey},
		{"too large", Record{Key: "k", Data: big}, ErrTooLarge},
	} {
		if _, err := s.Append(ctx, "s", &tc.rec, AppendOptions{}); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := s.Append(ctx, "nope", &Record{Key: "k"}, AppendOptions{}); !errors.Is(err, ErrStreamNotFound) {
		t.Errorf("unknown stream: %v", err)
	}
	h := MaxHashKey
	a, err := s.Append(ctx, "s", &Record{Key: "k", Data: []byte("x")}, AppendOptions{ExplicitHashKey: &h})
	if err != nil || a.ShardID != "shardId-000000000000" {
		t.Fatalf("explicit hash key: %v %v", a, err)
	}
}

func TestRateLimitRejectAndBackpressure(t *testing.T) {
	cfg := testStream("s", 2)
	cfg.Rate = RateConfig{RecordsPerSec: 10, OnLimit: OnLimitReject, MaxWait: conf.Duration(time.Second)}
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	ctx := context.Background()
	// Burst is one record at 10/s: the second in the same instant is refused.
	put(t, s, "s", "k", "1")
	if _, err := s.Append(ctx, "s", &Record{Key: "k", Data: []byte("2")}, AppendOptions{}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("reject: %v", err)
	}
	// Another key on the other shard is not affected by k's shard.
	other := ""
	for i := 0; ; i++ {
		k := fmt.Sprintf("o%d", i)
		if HashOf(k).Cmp(HashOf("k")) != 0 && (HashOf(k).Hi>>63) != (HashOf("k").Hi>>63) {
			other = k
			break
		}
	}
	put(t, s, "s", other, "x")

	cfg.Rate.OnLimit = OnLimitBackpress
	s2 := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
	defer s2.Close()
	start := time.Now()
	for i := 0; i < 4; i++ {
		put(t, s2, "s", "k", "x")
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("4 records at 10/s with backpressure took %v; the limiter did not hold them", el)
	}
}

func TestRetentionByTime(t *testing.T) {
	clk := newFakeClock()
	cfg := testStream("s", 1)
	cfg.SegmentSize = 4 << 10
	cfg.MaxRecordSize = 2 << 10
	cfg.Retention = conf.Duration(time.Hour)
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}, Clock: clk.Now})
	defer s.Close()
	if _, err := s.Checkpoints().Register("s", "slow-reader"); err != nil {
		t.Fatal(err)
	}
	payload := string(make([]byte, 500))
	for i := 0; i < 40; i++ { // ~5 segments
		put(t, s, "s", "k", payload)
		clk.Add(time.Minute)
	}
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	if sh.TrimHorizon() != 1 {
		t.Fatal("trimmed before retention ran")
	}
	s.EnforceRetention() // now = +40m: nothing is an hour old
	if sh.TrimHorizon() != 1 {
		t.Fatalf("trimmed data younger than retention: horizon %d", sh.TrimHorizon())
	}
	clk.Add(50 * time.Minute) // records 1..~30 are older than an hour
	s.EnforceRetention()
	th := sh.TrimHorizon()
	if th <= 1 {
		t.Fatal("nothing deleted after retention passed")
	}
	// Every deleted record is older than retention; every kept one from a
	// segment that still had a young record.
	cutoff := clk.Now().Add(-time.Hour).UnixMilli()
	if _, err := sh.arrivalAt(th); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sh.Read(1, 10, 1<<20); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("read below the trim horizon: %v", err)
	}
	var te *TrimmedError
	if _, _, err := sh.Read(1, 10, 1<<20); !errors.As(err, &te) || te.TrimHorizon != th {
		t.Fatalf("TrimmedError does not carry the horizon: %v", err)
	}
	if m := s.Metrics(); m.RetentionDeleted != int64(th-1) || m.UnreadDeleted != int64(th-1) {
		t.Fatalf("metrics: %+v, want %d deleted and unread", m, th-1)
	}
	if lost := s.Checkpoints().Lost("s", "slow-reader"); lost != int64(th-1) {
		t.Fatalf("consumer lost %d, want %d", lost, th-1)
	}
	// The newest deleted segment ended before the cutoff; the first kept
	// record's segment reaches past it.
	segs := st.log.Segments()
	last, _ := st.segmentLastArrival(st.log, segs[0])
	if segs[0].Sealed && last < cutoff {
		t.Fatalf("a segment entirely older than retention survived (first kept record at %d)", th)
	}
}

func TestMaxBytes(t *testing.T) {
	for _, mode := range []string{OnFullReject, OnFullDropOldest} {
		t.Run(mode, func(t *testing.T) {
			cfg := testStream("s", 1)
			cfg.SegmentSize = 4 << 10
			cfg.MaxRecordSize = 2 << 10
			cfg.MaxRecordSize = 2 << 10
			cfg.MaxBytes = 36 << 10 // the stream's and its log's directories, stream.json, the active, spare and 2 reusable segments, and room for sealed ones
			cfg.OnFull = mode
			s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
			defer s.Close()
			st, _ := s.Stream("s")
			payload := make([]byte, 700)
			var refused, stored int
			for i := 0; i < 200; i++ {
				_, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: payload}, AppendOptions{})
				switch {
				case err == nil:
					stored++
				case errors.Is(err, ErrFull):
					refused++
				default:
					t.Fatal(err)
				}
			}
			if st.Bytes() > cfg.MaxBytes.Bytes()+cfg.SegmentSize.Bytes() {
				t.Fatalf("stream holds %d bytes with max_bytes %d", st.Bytes(), cfg.MaxBytes.Bytes())
			}
			sh, _ := st.Shard("shardId-000000000000")
			switch mode {
			case OnFullReject:
				if refused == 0 || sh.TrimHorizon() != 1 {
					t.Fatalf("reject mode: refused %d, horizon %d (stored data must be kept)", refused, sh.TrimHorizon())
				}
			case OnFullDropOldest:
				if refused != 0 || stored != 200 || sh.TrimHorizon() == 1 {
					t.Fatalf("drop_oldest: refused %d stored %d horizon %d", refused, stored, sh.TrimHorizon())
				}
			}
		})
	}
}

func TestReshardUnderConcurrentWriters(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{testStream("s", 2)}})
	defer s.Close()
	st, _ := s.Stream("s")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	acked := make([][]uint64, 16) // per key: the sequence numbers acked, in order
	for k := range acked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("dev-%d", k)
			for n := 0; ctx.Err() == nil; n++ {
				a, err := s.Append(ctx, "s", &Record{Key: key, Data: []byte(fmt.Sprint(n))}, AppendOptions{})
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					t.Errorf("append: %v", err)
					return
				}
				acked[k] = append(acked[k], uint64(n))
				_ = a
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	infos := st.Shards()
	mid := EvenRanges(4)[1][0]
	must(t, st.Split(infos[0].ID, mid))
	time.Sleep(20 * time.Millisecond)
	must(t, st.UpdateShardCount(5))
	time.Sleep(20 * time.Millisecond)
	open := openIDs(st)
	// Merge the first two adjacent open shards.
	must(t, st.Merge(open[0].ID, open[1].ID))
	time.Sleep(20 * time.Millisecond)
	must(t, st.UpdateShardCount(3))
	time.Sleep(20 * time.Millisecond)
	cancel()
	wg.Wait()

	byKey := readAll(t, st)
	for k, nums := range acked {
		key := fmt.Sprintf("dev-%d", k)
		got := byKey[key]
		if len(got) < len(nums) {
			t.Fatalf("%s: %d acked, %d stored", key, len(nums), len(got))
		}
		for i, n := range nums {
			if string(got[i].Data) != fmt.Sprint(n) {
				t.Fatalf("%s: position %d holds %q, want %d (lost or reordered across a reshard)", key, i, got[i].Data, n)
			}
			if i > 0 && got[i].Seq <= got[i-1].Seq {
				t.Fatalf("%s: sequence numbers not increasing across reshard: %d then %d", key, got[i-1].Seq, got[i].Seq)
			}
		}
	}
	if n := len(openIDs(st)); n != 3 {
		t.Fatalf("%d open shards after UpdateShardCount(3)", n)
	}
	// Children cover the whole hash space exactly once.
	open = openIDs(st)
	if open[0].StartHash != (HashKey{}) || open[len(open)-1].EndHash != MaxHashKey {
		t.Fatal("open shards do not cover the hash space")
	}
	for i := 1; i < len(open); i++ {
		if open[i].StartHash != open[i-1].EndHash.Add1() {
			t.Fatal("gap or overlap among open shards")
		}
	}
}

func openIDs(st *Stream) []ShardInfo {
	var out []ShardInfo
	for _, sh := range st.openShards() {
		out = append(out, sh.Info())
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A reader tailing a shard must learn at once that a reshard closed it, so
// it can move on to the children.
func TestCloseWakesTailingReaders(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{testStream("s", 1)}})
	defer s.Close()
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	ch := sh.Changed()
	must(t, st.Split(sh.ID(), EvenRanges(2)[1][0]))
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("closing the shard did not wake its readers")
	}
	if !sh.Info().Closed {
		t.Fatal("woken before the shard was marked closed")
	}
}

// A shard that stops receiving data must still lose its records to
// retention: the active segment is rolled and then deleted.
func TestRetentionReachesIdleShard(t *testing.T) {
	clk := newFakeClock()
	cfg := testStream("s", 1)
	cfg.Retention = conf.Duration(time.Hour)
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}, Clock: clk.Now})
	defer s.Close()
	for i := 0; i < 5; i++ {
		put(t, s, "s", "k", "x")
	}
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	clk.Add(59 * time.Minute)
	s.EnforceRetention()
	if sh.TrimHorizon() != 1 {
		t.Fatal("deleted before retention")
	}
	clk.Add(2 * time.Minute)
	s.EnforceRetention() // rolls the old active segment
	s.EnforceRetention() // and deletes it
	if sh.TrimHorizon() != 6 {
		t.Fatalf("idle shard kept records past retention: trim horizon %d, want 6", sh.TrimHorizon())
	}
	if a := put(t, s, "s", "k", "new"); a.Seq != 6 {
		t.Fatalf("append after retention emptied the shard got seq %d, want 6", a.Seq)
	}
}

// Closed parents age out: once retention has deleted their records and
// passed since they closed, they leave the shard map, and their children
// stay readable.
func TestClosedParentExpires(t *testing.T) {
	clk := newFakeClock()
	cfg := testStream("s", 1)
	cfg.Retention = conf.Duration(time.Hour)
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}, Clock: clk.Now})
	defer s.Close()
	put(t, s, "s", "k", "old")
	st, _ := s.Stream("s")
	must(t, st.Split("shardId-000000000000", EvenRanges(2)[1][0]))
	put(t, s, "s", "k", "new")
	clk.Add(30 * time.Minute)
	s.EnforceRetention()
	if len(st.Shards()) != 3 {
		t.Fatal("parent expired before retention")
	}
	clk.Add(2 * time.Hour)
	// The parent's and the child's records share the stream's log: the
	// first pass rolls their segment, the second deletes it and, the
	// parent now empty and closed for longer than retention, expires it.
	s.EnforceRetention()
	s.EnforceRetention()
	put(t, s, "s", "k", "newer") // the child takes writes
	infos := st.Shards()
	if len(infos) != 2 {
		t.Fatalf("closed parent still listed after retention: %+v", infos)
	}
	for _, i := range infos {
		if i.Closed || i.ParentID != "shardId-000000000000" {
			t.Fatalf("unexpected shard left: %+v", i)
		}
	}
	if _, err := st.Shard("shardId-000000000000"); !errors.Is(err, ErrShardNotFound) {
		t.Fatalf("expired parent still reachable: %v", err)
	}
}
