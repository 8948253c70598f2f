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

// A rate limit changed by Apply takes effect on the next append (both
// ways), while writers keep appending: the race detector watches the
// limiter and the stream settings.
func TestApplyRateLimitUnderWriters(t *testing.T) {
	cfg := testStream("s", 2)
	cfg.Rate = RateConfig{RecordsPerSec: 0, OnLimit: OnLimitReject, MaxWait: conf.Duration(time.Second)}
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
	defer s.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stored, throttled atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Append(context.Background(), "s", &Record{Key: fmt.Sprintf("w%d-%d", w, i), Data: []byte("x")}, AppendOptions{NoWait: i%2 == 0})
				switch {
				case err == nil:
					stored.Add(1)
				case errors.Is(err, ErrThrottled):
					throttled.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	limited := cfg
	limited.Rate.RecordsPerSec = 1
	for range 10 {
		if _, err := s.Apply([]StreamConfig{limited}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		if _, err := s.Apply([]StreamConfig{cfg}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cs, err := s.Apply([]StreamConfig{limited})
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if len(cs) != 1 || cs[0].Path != "streams[0].rate.records_per_sec" || cs[0].Effect != conf.Live || cs[0].Old != "0" || cs[0].New != "1" {
		t.Fatalf("changes = %+v", cs)
	}
	if stored.Load() == 0 || throttled.Load() == 0 {
		t.Fatalf("stored %d, throttled %d: the limit never took effect or never lifted", stored.Load(), throttled.Load())
	}
	// Now at 1 record/s per shard (burst 1): one key, two appends in a row.
	if _, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: []byte("x")}, AppendOptions{}); err != nil && !errors.Is(err, ErrThrottled) {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: []byte("x")}, AppendOptions{}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("second append at 1/s: %v, want throttled", err)
	}
	st, _ := s.Stream("s")
	if st.Config().Rate.RecordsPerSec != 1 {
		t.Fatalf("stream config = %+v", st.Config())
	}
}

// Retention shortened by Apply applies at the next retention pass; a
// changed segment size is reported as needing a restart and not applied;
// a changed shard count is reported as never applied.
func TestApplyRetentionAndReports(t *testing.T) {
	clk := newFakeClock()
	cfg := testStream("s", 1)
	cfg.SegmentSize = 4 << 10
	cfg.MaxRecordSize = 2 << 10
	cfg.Retention = conf.Duration(10 * time.Hour)
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}, Clock: clk.Now})
	defer s.Close()
	payload := string(make([]byte, 500))
	for range 40 {
		put(t, s, "s", "k", payload)
		clk.Add(time.Minute)
	}
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	clk.Add(time.Hour)
	s.EnforceRetention()
	if sh.TrimHorizon() != 1 {
		t.Fatal("trimmed within 10h retention")
	}
	next := cfg
	next.Retention = conf.Duration(time.Hour)
	next.SegmentSize = 8 << 10
	next.Shards = 3
	cs, err := s.Apply([]StreamConfig{next})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]conf.Effect{"streams[0].shards": conf.Kept, "streams[0].retention": conf.Live, "streams[0].segment_size": conf.Restart}
	if len(cs) != len(want) {
		t.Fatalf("changes = %+v", cs)
	}
	for _, c := range cs {
		if e, ok := want[c.Path]; !ok || e != c.Effect {
			t.Errorf("change %+v, want effect %v", c, want[c.Path])
		}
	}
	s.EnforceRetention()
	if sh.TrimHorizon() <= 1 {
		t.Fatal("nothing deleted after retention was shortened to an hour")
	}
	if got := st.Config(); got.Retention.D() != time.Hour || got.SegmentSize != 4<<10 || len(st.Shards()) != 1 {
		t.Fatalf("stream after Apply: %+v, %d shards", got, len(st.Shards()))
	}
}

// A stream new to the file is created; one the file drops keeps its data
// and is reported, not deleted.
func TestApplyCreatesAndKeepsStreams(t *testing.T) {
	dir := t.TempDir()
	a, b := testStream("a", 1), testStream("b", 2)
	s := openStore(t, dir, Options{Streams: []StreamConfig{a}})
	put(t, s, "a", "k", "keep me")
	cs, err := s.Apply([]StreamConfig{b})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Path != "streams[0]" || cs[0].Old != "" || cs[1].Path != "streams" || cs[1].Old != "a" || cs[1].Effect != conf.Kept {
		t.Fatalf("changes = %+v", cs)
	}
	put(t, s, "b", "k", "new")
	if st, err := s.Stream("b"); err != nil || len(st.Shards()) != 2 {
		t.Fatalf("stream b: %v", err)
	}
	st, err := s.Stream("a")
	if err != nil {
		t.Fatalf("dropped stream was removed: %v", err)
	}
	if got := readAll(t, st)["k"]; len(got) != 1 || string(got[0].Data) != "keep me" {
		t.Fatalf("dropped stream's data: %+v", got)
	}
	// Apply twice is a no-op.
	if cs, err := s.Apply([]StreamConfig{b}); err != nil || len(cs) != 0 {
		t.Fatalf("second Apply: %+v, %v", cs, err)
	}
	s.Close()
	s = openStore(t, dir, Options{Streams: []StreamConfig{b}})
	defer s.Close()
	if _, err := s.Stream("a"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
