package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestGroupCommitConcurrentWriters(t *testing.T) {
	const writers, each = 64, 60
	fsys := newFaultFS()
	dir := t.TempDir()
	opts := testOpts(fsys)
	opts.SegmentSize = 64 << 10
	l := mustOpen(t, dir, opts)
	syncsBefore := fsys.syncs.Load()

	type rec struct {
		idx     uint64
		payload []byte
	}
	got := make([][]rec, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := []byte(fmt.Sprintf("writer %d record %d", w, i))
				idx, err := l.Append(context.Background(), p)
				if err != nil {
					t.Errorf("writer %d: Append: %v", w, err)
					return
				}
				got[w] = append(got[w], rec{idx, p})
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	syncs := fsys.syncs.Load() - syncsBefore
	total := writers * each
	if syncs >= int64(total) {
		t.Fatalf("%d syncs for %d appends: no group commit", syncs, total)
	}
	t.Logf("%d appends, %d syncs (%.1f records per sync)", total, syncs, float64(total)/float64(syncs))

	seen := make(map[uint64]bool, total)
	for w, recs := range got {
		for i, r := range recs {
			if seen[r.idx] {
				t.Fatalf("index %d returned twice", r.idx)
			}
			seen[r.idx] = true
			if i > 0 && r.idx <= recs[i-1].idx {
				t.Fatalf("writer %d: index %d after %d: order lost", w, r.idx, recs[i-1].idx)
			}
		}
	}
	for i := uint64(1); i <= uint64(total); i++ {
		if !seen[i] {
			t.Fatalf("index %d never returned: indexes not contiguous", i)
		}
	}
	if l.LastIndex() != uint64(total) {
		t.Fatalf("LastIndex = %d, want %d", l.LastIndex(), total)
	}
	closeLog(t, l)

	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	if l.LastIndex() != uint64(total) || len(l.Segments()) < 2 {
		t.Fatalf("after reopen: LastIndex = %d, %d segments", l.LastIndex(), len(l.Segments()))
	}
	for _, recs := range got {
		for _, r := range recs {
			p, err := l.Read(r.idx)
			if err != nil || !bytes.Equal(p, r.payload) {
				t.Fatalf("Read(%d) = %q, %v; want %q", r.idx, p, err, r.payload)
			}
		}
	}
}

func TestAppendBatchContiguous(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	appendN(t, l, 5, 10)
	var batch [][]byte
	for i := 6; i < 6+100; i++ { // 100 × 300 B: bigger than a 4 KiB segment
		batch = append(batch, payloadFor(i, 300))
	}
	first, err := l.AppendBatch(context.Background(), batch)
	if err != nil || first != 6 {
		t.Fatalf("AppendBatch = %d, %v; want 6", first, err)
	}
	for i, p := range batch {
		got, err := l.Read(first + uint64(i))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Read(%d): %v", first+uint64(i), err)
		}
	}
	// A batch never spans segments: it lives whole in one.
	for _, s := range l.Segments() {
		if s.FirstIndex > first && s.FirstIndex < first+uint64(len(batch)) {
			t.Fatalf("segment %s starts inside the batch", s.Path)
		}
	}
	if n, err := l.AppendBatch(context.Background(), nil); err != nil || n != l.LastIndex()+1 {
		t.Fatalf("empty batch = %d, %v", n, err)
	}
}

func TestStickyWriteFailure(t *testing.T) {
	fsys := newFaultFS()
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(fsys))
	appendN(t, l, 3, 50)
	fsys.failNextWrite.Store(true)
	_, err := l.Append(context.Background(), []byte("lost"))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after failed write: %v, want ErrFailed wrapping EIO", err)
	}
	assertFailedState(t, l, 3, 50)
	closeLog(t, l)
	// The half-written frame is a torn tail: cut at the next open.
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	checkRecords(t, l, 1, 3, 50)
}

func TestStickySyncFailure(t *testing.T) {
	fsys := newFaultFS()
	l := mustOpen(t, t.TempDir(), testOpts(fsys))
	defer closeLog(t, l)
	appendN(t, l, 3, 50)
	fsys.failNextSync.Store(true)
	_, err := l.Append(context.Background(), []byte("not durable"))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after failed sync: %v, want ErrFailed wrapping EIO", err)
	}
	syncs := fsys.syncs.Load()
	assertFailedState(t, l, 3, 50)
	time.Sleep(20 * time.Millisecond)
	if fsys.syncs.Load() != syncs {
		t.Fatal("the log synced again after a failed sync")
	}
}

// assertFailedState: appends are refused, the unacknowledged record is
// invisible and committed ones still read.
func assertFailedState(t *testing.T, l *Log, last uint64, size int) {
	t.Helper()
	if !errors.Is(l.Err(), ErrFailed) {
		t.Fatalf("Err() = %v, want ErrFailed", l.Err())
	}
	if _, err := l.Append(context.Background(), []byte("x")); !errors.Is(err, ErrFailed) {
		t.Fatalf("later Append: %v, want ErrFailed", err)
	}
	if _, err := l.AppendBatch(context.Background(), [][]byte{{1}, {2}}); !errors.Is(err, ErrFailed) {
		t.Fatalf("later AppendBatch: %v, want ErrFailed", err)
	}
	if err := l.AppendAsync([]byte("x"), nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("later AppendAsync: %v, want ErrFailed", err)
	}
	if _, err := l.Read(last + 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read(unacknowledged) = %v, want ErrNotFound", err)
	}
	checkRecords(t, l, 1, last, size)
}

func TestNoSpaceAtSegmentCreation(t *testing.T) {
	fsys := newFaultFS()
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(fsys))
	defer closeLog(t, l)
	fsys.noSpace.Store(true)
	// Fill the first segment; the preparer fails, then the roll fails.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = l.Append(context.Background(), payloadFor(int(l.LastIndex()+1), 100))
	}
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append with a full disk: %v, want ErrNoSpace and ENOSPC", err)
	}
	if l.Err() != nil {
		t.Fatalf("ENOSPC at segment creation made the log fail: %v", l.Err())
	}
	last := l.LastIndex()
	if _, err := l.AppendBatch(context.Background(), [][]byte{payloadFor(0, 100), payloadFor(0, 100)}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("AppendBatch with a full disk: %v", err)
	}
	if l.LastIndex() != last {
		t.Fatalf("refused appends moved LastIndex %d -> %d", last, l.LastIndex())
	}
	if tmp := tmpFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("failed creation left %v", tmp)
	}
	fsys.noSpace.Store(false)
	appendN(t, l, 50, 100)
	if len(l.Segments()) < 2 {
		t.Fatal("no new segment after space came back")
	}
	checkRecords(t, l, 1, last+50, 100)
}

func TestAppendAsync(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	const n = 200
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := map[uint64][]byte{}
	for i := range n {
		p := payloadFor(i, 40)
		wg.Add(1)
		err := l.AppendAsync(p, func(idx uint64, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("async %d: %v", i, err)
			}
			mu.Lock()
			got[idx] = payloadFor(i, 40)
			mu.Unlock()
		})
		clear(p) // the log copied it
		if err != nil {
			t.Fatalf("AppendAsync: %v", err)
		}
	}
	if err := l.AppendAsync([]byte("no callback"), nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("%d distinct indexes for %d appends", len(got), n)
	}
	for idx, p := range got {
		r, err := l.Read(idx)
		if err != nil || !bytes.Equal(r, p) {
			t.Fatalf("Read(%d) = %q, %v; want %q", idx, r, err, p)
		}
	}
}

func TestAppendAsyncBusyAndCancel(t *testing.T) {
	fsys := newFaultFS()
	l := mustOpen(t, t.TempDir(), testOpts(fsys))
	defer closeLog(t, l)
	release := fsys.blockSyncs()
	defer release()
	// The first append takes the committer into a blocked sync.
	first := make(chan error, 1)
	go func() { _, err := l.Append(context.Background(), []byte("first")); first <- err }()
	waitFor(t, func() bool { return fsys.blocked.Load() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Append(ctx, []byte("gives up")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append with expired ctx: %v", err)
	}
	var busy error
	for i := 0; i < queueLen+10 && busy == nil; i++ {
		busy = l.AppendAsync([]byte("q"), nil)
	}
	if !errors.Is(busy, ErrBusy) {
		t.Fatalf("AppendAsync on a full queue: %v, want ErrBusy", busy)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The withdrawn record was never written: every stored one is "first" or "q".
	waitFor(t, func() bool { return len(l.queue) == 0 })
	_, err := l.ReadFrom(1, 0, 0, func(i uint64, p []byte) error {
		if string(p) == "gives up" {
			return fmt.Errorf("withdrawn record stored at %d", i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSyncInterval(t *testing.T) {
	fsys := newFaultFS()
	dir := t.TempDir()
	opts := testOpts(fsys)
	opts.Sync = SyncInterval
	opts.SyncInterval = 5 * time.Millisecond
	l := mustOpen(t, dir, opts)
	base := fsys.syncs.Load()
	appendN(t, l, 10, 100) // no roll: acks do not wait for a sync
	if got := fsys.syncs.Load() - base; got > 1 {
		t.Fatalf("%d syncs during 10 interval-mode appends", got)
	}
	waitFor(t, func() bool { return fsys.syncs.Load() > base })
	closeLog(t, l)
	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	checkRecords(t, l, 1, 10, 100)
}

func TestTooLarge(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	if _, err := l.Append(context.Background(), make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	// Bigger than a segment but within limits: a segment of its own.
	big := payloadFor(1, 10000)
	if idx, err := l.Append(context.Background(), big); err != nil || idx != 1 {
		t.Fatalf("Append(10 KB) = %d, %v", idx, err)
	}
	appendN(t, l, 1, 10)
	if got, _ := l.Read(1); !bytes.Equal(got, big) {
		t.Fatal("big record read back wrong")
	}
	if st, err := os.Stat(l.Segments()[0].Path); err != nil || st.Size() < 10000 {
		t.Fatalf("segment holding the big record: %v %v", st, err)
	}
}
