package wal

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadFromLimits(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	appendN(t, l, 200, 100) // spans several segments

	collect := func(from uint64, maxRecords, maxBytes int) ([]uint64, uint64, error) {
		var got []uint64
		next, err := l.ReadFrom(from, maxRecords, maxBytes, func(i uint64, p []byte) error {
			if !bytes.Equal(p, payloadFor(int(i), 100)) {
				t.Fatalf("record %d: wrong payload", i)
			}
			got = append(got, i)
			return nil
		})
		return got, next, err
	}
	if got, next, err := collect(1, 0, 0); err != nil || len(got) != 200 || next != 201 {
		t.Fatalf("unbounded: %d records, next %d, %v", len(got), next, err)
	}
	if got, next, err := collect(30, 10, 0); err != nil || len(got) != 10 || got[0] != 30 || next != 40 {
		t.Fatalf("maxRecords: %v next %d %v", got, next, err)
	}
	if got, next, _ := collect(30, 0, 250); len(got) != 2 || next != 32 {
		t.Fatalf("maxBytes 250: %v next %d", got, next)
	}
	if got, next, _ := collect(30, 0, 1); len(got) != 1 || next != 31 {
		t.Fatalf("maxBytes below one record must still deliver one: %v next %d", got, next)
	}
	if got, next, err := collect(201, 0, 0); err != nil || len(got) != 0 || next != 201 {
		t.Fatalf("at the end: %v next %d %v", got, next, err)
	}
	stop := errors.New("stop")
	next, err := l.ReadFrom(5, 0, 0, func(i uint64, _ []byte) error {
		if i == 8 {
			return stop
		}
		return nil
	})
	if err != stop || next != 8 {
		t.Fatalf("fn error: next %d, %v", next, err)
	}
	if _, err := l.Read(0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Read(0) = %v", err)
	}
	if _, err := l.Read(201); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read(201) = %v", err)
	}
}

func TestReadDetectsCorruption(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	appendN(t, l, 10, 100)
	seg := l.Segments()[0]
	off := segHeaderSize + 4*int64(frameSize(100)) // record 5
	flipByte(t, seg.Path, off+frameHeaderSize+1)
	_, err := l.Read(5)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Segment != seg.Path || ce.Offset != off {
		t.Fatalf("Read of a flipped record: %v", err)
	}
	if _, err := l.Read(6); err != nil {
		t.Fatalf("Read(6) after the bad one: %v", err)
	}
}

func TestTruncateFront(t *testing.T) {
	dir := t.TempDir()
	fsys := newFaultFS()
	l := mustOpen(t, dir, testOpts(fsys))
	appendN(t, l, 100, 100) // segments 1..36, 37..72, 73..100
	segs := l.Segments()
	if removed, err := l.TruncateFront(36); err != nil || len(removed) != 0 {
		t.Fatalf("TruncateFront(36) removed %+v (its segment still holds 36), %v", removed, err)
	}
	dirSyncs := fsys.dirSyncs.Load()
	removed, err := l.TruncateFront(50)
	if err != nil || len(removed) != 1 || removed[0].Path != segs[0].Path {
		t.Fatalf("TruncateFront(50) = %+v, %v", removed, err)
	}
	if fsys.dirSyncs.Load() == dirSyncs {
		t.Fatal("TruncateFront did not fsync the directory")
	}
	if _, err := os.Stat(segs[0].Path); !os.IsNotExist(err) {
		t.Fatalf("segment file still there: %v", err)
	}
	if l.FirstIndex() != 37 {
		t.Fatalf("FirstIndex = %d", l.FirstIndex())
	}
	if _, err := l.Read(36); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Read(36) = %v", err)
	}
	// The active segment is never deleted, whatever the index.
	removed, err = l.TruncateFront(1000)
	if err != nil || len(removed) != 1 || removed[0].FirstIndex != 37 {
		t.Fatalf("TruncateFront(1000) = %+v, %v", removed, err)
	}
	checkRecords(t, l, 73, 100, 100)
	closeLog(t, l)
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	checkRecords(t, l, 73, 100, 100)
}

// TestTruncateFrontConcurrentReaders races readers against appends and
// retention: a reader gets its record or ErrCompacted, never a wrong
// payload, another error or a panic.
func TestTruncateFrontConcurrentReaders(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer closeLog(t, l)
	appendN(t, l, 100, 100)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads, compacted atomic.Int64
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for !stop.Load() {
				first, last := l.FirstIndex(), l.LastIndex()
				i := first + rng.Uint64N(last-first+1)
				if r%2 == 0 {
					p, err := l.Read(i)
					switch {
					case errors.Is(err, ErrCompacted):
						compacted.Add(1)
					case err != nil:
						t.Errorf("Read(%d): %v", i, err)
						return
					case !bytes.Equal(p, payloadFor(int(i), 100)):
						t.Errorf("Read(%d): wrong payload", i)
						return
					}
				} else {
					_, err := l.ReadFrom(i, 0, 0, func(j uint64, p []byte) error {
						if !bytes.Equal(p, payloadFor(int(j), 100)) {
							t.Errorf("ReadFrom: record %d wrong", j)
						}
						return nil
					})
					if errors.Is(err, ErrCompacted) {
						compacted.Add(1)
					} else if err != nil {
						t.Errorf("ReadFrom(%d): %v", i, err)
						return
					}
				}
				reads.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() { // retention
		defer wg.Done()
		for !stop.Load() {
			if _, err := l.TruncateFront(l.LastIndex() - 50); err != nil {
				t.Errorf("TruncateFront: %v", err)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) && !t.Failed() {
		appendN(t, l, 10, 100)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reads, %d compacted, log now %d..%d", reads.Load(), compacted.Load(), l.FirstIndex(), l.LastIndex())
	if l.FirstIndex() == 1 {
		t.Fatal("retention never deleted a segment")
	}
}

func TestNotify(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	ch := l.Notify()
	select {
	case <-ch:
		t.Fatal("Notify channel closed before any commit")
	default:
	}
	if ch2 := l.Notify(); ch2 != ch {
		t.Fatal("Notify returned a different channel with no commit in between")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ch
		if l.LastIndex() < 1 {
			t.Error("woken before LastIndex advanced")
		}
	}()
	appendN(t, l, 1, 10)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up after a commit")
	}
	next := l.Notify()
	if next == ch {
		t.Fatal("same channel after a commit")
	}
	closeLog(t, l)
	select {
	case <-next:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Notify waiters")
	}
	select {
	case <-l.Notify():
	default:
		t.Fatal("Notify after Close returned an open channel")
	}
}

func TestReadsAfterClose(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	appendN(t, l, 2, 10)
	closeLog(t, l)
	if _, err := l.Read(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := l.Append(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := l.TruncateFront(2); !errors.Is(err, ErrClosed) {
		t.Fatalf("TruncateFront after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Roll seals a partly filled segment so that retention can delete it, and
// later appends go on in a new segment with contiguous indexes.
func TestRollSealsActiveSegment(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(nil))
	defer l.Close()
	for range 3 {
		if _, err := l.Append(context.Background(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if len(segs) != 2 || !segs[0].Sealed || segs[0].LastIndex != 3 || segs[1].Sealed {
		t.Fatalf("after Roll: %+v", segs)
	}
	if err := l.Roll(); err != nil { // an empty active segment is not rolled again
		t.Fatal(err)
	}
	if n := len(l.Segments()); n != 2 {
		t.Fatalf("Roll of an empty segment made %d segments", n)
	}
	idx, err := l.Append(context.Background(), []byte("y"))
	if err != nil || idx != 4 {
		t.Fatalf("append after Roll: %d %v", idx, err)
	}
	if _, err := l.TruncateFront(4); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 4 {
		t.Fatalf("first index %d after deleting the rolled segment", l.FirstIndex())
	}
}
