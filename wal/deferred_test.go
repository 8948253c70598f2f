package wal

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// completions records Committed calls.
type completions struct {
	mu   sync.Mutex
	idx  []uint64
	errs []error
	seen chan struct{}
}

func newCompletions() *completions { return &completions{seen: make(chan struct{}, 1024)} }

type completion struct {
	c *completions
}

func (c completion) Committed(index uint64, err error) {
	c.c.mu.Lock()
	c.c.idx = append(c.c.idx, index)
	c.c.errs = append(c.c.errs, err)
	c.c.mu.Unlock()
	c.c.seen <- struct{}{}
}

func (c *completions) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-c.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %d completions", n)
		}
	}
}

// A deferred append is reported only after the sync that makes it durable,
// never before: the MQTT acknowledgement is sent from this report.
func TestAppendDeferredReportsAfterSync(t *testing.T) {
	fsys := newFaultFS()
	l := mustOpen(t, t.TempDir(), testOpts(fsys))
	defer l.Close()
	release := fsys.blockSyncs()
	defer release()
	c := newCompletions()
	for i := range 3 {
		if err := l.AppendDeferred(context.Background(), payloadFor(i+1, 10), completion{c}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return fsys.blocked.Load() == 1 })
	select {
	case <-c.seen:
		t.Fatal("a deferred append was reported while its sync had not returned")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	c.wait(t, 3)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, idx := range c.idx {
		if idx != uint64(i+1) || c.errs[i] != nil {
			t.Fatalf("completion %d: index %d err %v, want index %d and no error", i, idx, c.errs[i], i+1)
		}
	}
	checkRecords(t, l, 1, 3, 10)
}

// Completions arrive in append order across groups, with every record
// stored, while other goroutines append concurrently.
func TestAppendDeferredOrder(t *testing.T) {
	fsys := newFaultFS()
	opts := testOpts(fsys)
	opts.SegmentSize = 64 << 10
	opts.CommitDelay = time.Millisecond
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()
	const n = 2000
	c := newCompletions()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a synchronous neighbour, sharing groups
		defer wg.Done()
		for range 200 {
			if _, err := l.Append(context.Background(), []byte("sync")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range n {
		if err := l.AppendDeferred(context.Background(), []byte{byte(i)}, completion{c}); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t, n)
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 1; i < n; i++ {
		if c.idx[i] <= c.idx[i-1] {
			t.Fatalf("completion %d has index %d after %d: out of order", i, c.idx[i], c.idx[i-1])
		}
	}
	for i, idx := range c.idx {
		b, err := l.Read(idx)
		if err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Fatalf("record %d at %d: %q, %v", i, idx, b, err)
		}
	}
}

// A failed sync is reported to every deferred append of the group, and
// later appends are refused with the sticky error at once.
func TestAppendDeferredFailedSync(t *testing.T) {
	fsys := newFaultFS()
	l := mustOpen(t, t.TempDir(), testOpts(fsys))
	defer l.Close()
	fsys.failNextSync.Store(true)
	c := newCompletions()
	if err := l.AppendDeferred(context.Background(), []byte("x"), completion{c}); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 1)
	if !errors.Is(c.errs[0], ErrFailed) {
		t.Fatalf("completion error %v, want ErrFailed", c.errs[0])
	}
	if err := l.AppendDeferred(context.Background(), []byte("y"), completion{c}); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after failure: %v, want ErrFailed", err)
	}
}

// Close reports every deferred append queued before it.
func TestAppendDeferredClose(t *testing.T) {
	fsys := newFaultFS()
	l := mustOpen(t, t.TempDir(), testOpts(fsys))
	c := newCompletions()
	for range 100 {
		if err := l.AppendDeferred(context.Background(), []byte("x"), completion{c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idx) != 100 {
		t.Fatalf("%d of 100 completions reported by Close", len(c.idx))
	}
	if err := l.AppendDeferred(context.Background(), []byte("x"), completion{c}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}

// The committer lingers for company without being woken by every arrival,
// and a commit delay that ends with a single arrival still commits it.
func TestLingerWakesOnceForTheGroup(t *testing.T) {
	const writers, n = 16, 40
	with := syncsFor(t, 5*time.Millisecond, writers, n)
	if with > writers*n/2 {
		t.Fatalf("%d syncs for %d appends by %d writers with a commit delay: no grouping", with, writers*n, writers)
	}
}

func BenchmarkAppendDeferred(b *testing.B) {
	l := mustOpen(b, b.TempDir(), Options{Name: "bench", Sync: SyncInterval})
	defer l.Close()
	c := &countCompletion{done: make(chan struct{})}
	c.want = int64(b.N)
	p := make([]byte, 200)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := l.AppendDeferred(context.Background(), p, c); err != nil {
			b.Fatal(err)
		}
	}
	<-c.done
}

type countCompletion struct {
	mu   sync.Mutex
	n    int64
	want int64
	done chan struct{}
}

func (c *countCompletion) Committed(uint64, error) {
	c.mu.Lock()
	c.n++
	if c.n == c.want {
		close(c.done)
	}
	c.mu.Unlock()
}
