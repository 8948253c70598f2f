package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// A reader inside a segment that retention deletes finishes on its open
// descriptor; a reader that arrives after the file is gone gets ErrCompacted.
func TestReadInsideDeletedSegment(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	appendN(t, l, 100, 100) // segments 1..36, 37..72, 73..100
	var got []uint64
	truncated := false
	next, err := l.ReadFrom(1, 0, 0, func(i uint64, p []byte) error {
		if !truncated {
			truncated = true
			if removed, err := l.TruncateFront(40); err != nil || len(removed) != 1 {
				t.Fatalf("TruncateFront inside a read: %v, %v", removed, err)
			}
		}
		if !bytes.Equal(p, payloadFor(int(i), 100)) {
			t.Fatalf("record %d wrong after its file was deleted", i)
		}
		got = append(got, i)
		return nil
	})
	if err != nil || next != 101 || len(got) != 100 {
		t.Fatalf("ReadFrom across a deletion: next %d, %d records, %v", next, len(got), err)
	}
	if _, err := l.Read(1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Read(1) after deletion: %v", err)
	}

	// The window between finding a segment and opening its file.
	seg := l.Segments()[0]
	if err := os.Remove(seg.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(seg.FirstIndex); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Read from a vanished file: %v, want ErrCompacted", err)
	}
}

// Appends racing Seal either commit (and stay readable) or get ErrSealed.
func TestSealRacingAppends(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	var mu sync.Mutex
	okIdx := map[uint64][]byte{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				p := payloadFor(w*100000+i, 60)
				idx, err := l.Append(context.Background(), p)
				if errors.Is(err, ErrSealed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				okIdx[idx] = p
				mu.Unlock()
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if uint64(len(okIdx)) != l.LastIndex() {
		t.Fatalf("%d acknowledged, LastIndex %d", len(okIdx), l.LastIndex())
	}
	for idx, p := range okIdx {
		if got, err := l.Read(idx); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Read(%d) after Seal: %v", idx, err)
		}
	}
}

// Appends racing Close either commit durably or get ErrClosed.
func TestCloseRacingAppends(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	var mu sync.Mutex
	okIdx := map[uint64][]byte{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				p := payloadFor(w*100000+i, 60)
				idx, err := l.Append(context.Background(), p)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				okIdx[idx] = p
				mu.Unlock()
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	closeLog(t, l)
	wg.Wait()
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	if uint64(len(okIdx)) != l.LastIndex() {
		t.Fatalf("%d acknowledged, %d stored", len(okIdx), l.LastIndex())
	}
	for idx, p := range okIdx {
		if got, err := l.Read(idx); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Read(%d) after reopen: %v", idx, err)
		}
	}
}

// A failed background sync (SyncInterval) is sticky too.
func TestIntervalSyncFailureIsSticky(t *testing.T) {
	fsys := newFaultFS()
	opts := testOpts(fsys)
	opts.Sync = SyncInterval
	opts.SyncInterval = time.Millisecond
	l := mustOpen(t, t.TempDir(), opts)
	defer closeLog(t, l)
	base := fsys.syncs.Load()
	appendN(t, l, 2, 10)
	waitFor(t, func() bool { return fsys.syncs.Load() > base }) // the ticker works
	fsys.failNextSync.Store(true)
	appendN(t, l, 1, 10)
	waitFor(t, func() bool { return l.Err() != nil })
	if _, err := l.Append(context.Background(), []byte("x")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after failed background sync: %v", err)
	}
	// Record 3 was written but its sync failed: it may not be durable, so
	// readers never see it.
	checkRecords(t, l, 1, 2, 10)
}
