package wal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReopenAfterClose(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	appendN(t, l, 80, 100)
	before := l.Segments()
	size := l.Size()
	closeLog(t, l)
	if tmp := tmpFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("Close left temp files %v", tmp)
	}
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	after := l.Segments()
	if len(after) != len(before) || l.Size() != size {
		t.Fatalf("segments %+v, size %d; before %+v, size %d", after, l.Size(), before, size)
	}
	for i := range before {
		if !reflect.DeepEqual(before[i], after[i]) {
			t.Fatalf("segment %d: %+v, before %+v", i, after[i], before[i])
		}
	}
	appendN(t, l, 20, 100)
	checkRecords(t, l, 1, 100, 100)
}

func TestFirstIndexOption(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(nil)
	opts.FirstIndex = 1000
	l := mustOpen(t, dir, opts)
	if l.FirstIndex() != 1000 || l.LastIndex() != 999 {
		t.Fatalf("new log: first %d last %d", l.FirstIndex(), l.LastIndex())
	}
	if _, err := l.Read(1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read in an empty log: %v", err)
	}
	if idx, err := l.Append(context.Background(), payloadFor(1000, 10)); err != nil || idx != 1000 {
		t.Fatalf("first Append = %d, %v", idx, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000001000.seg")); err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
	opts.FirstIndex = 5 // ignored: data exists
	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	checkRecords(t, l, 1000, 1000, 10)
}

func TestEmptyLogReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	closeLog(t, l)
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	if l.FirstIndex() != 1 || l.LastIndex() != 0 || len(l.Segments()) != 1 {
		t.Fatalf("empty log: %d..%d %+v", l.FirstIndex(), l.LastIndex(), l.Segments())
	}
}

func TestSeal(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	appendN(t, l, 50, 100)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := l.Seal(); err != nil {
		t.Fatalf("second Seal: %v", err)
	}
	if _, err := l.Append(context.Background(), []byte("x")); !errors.Is(err, ErrSealed) {
		t.Fatalf("Append after Seal: %v", err)
	}
	if err := l.AppendAsync([]byte("x"), nil); !errors.Is(err, ErrSealed) {
		t.Fatalf("AppendAsync after Seal: %v", err)
	}
	for _, s := range l.Segments() {
		st, err := os.Stat(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		// The newest is cut right after its footer: no preallocated space.
		// Footer: fixed part, 2 index entries, a lane table of one lane.
		if !s.Sealed || (s.LastIndex == 50 && st.Size() != s.Bytes+footerMinSize+4+4+laneEntrySize+trailerSize) {
			t.Fatalf("after Seal: %+v, file %d bytes", s, st.Size())
		}
	}
	if tmp := tmpFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("Seal left spare segments %v", tmp)
	}
	checkRecords(t, l, 1, 50, 100)
	// A sealed log can be emptied entirely by retention.
	if removed, err := l.TruncateFront(51); err != nil || len(removed) != 2 {
		t.Fatalf("TruncateFront on a sealed log: %d removed, %v", len(removed), err)
	}
	if l.FirstIndex() != 51 || l.LastIndex() != 50 {
		t.Fatalf("emptied sealed log: %d..%d", l.FirstIndex(), l.LastIndex())
	}
	closeLog(t, l)
	if err := l.Seal(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Seal after Close: %v", err)
	}
}

func TestSealReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	appendN(t, l, 10, 100)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	checkRecords(t, l, 1, 10, 100)
	appendN(t, l, 60, 100) // the trimmed segment grows, then rolls
	checkRecords(t, l, 1, 70, 100)
}

func TestTempFilesRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	appendN(t, l, 3, 10)
	closeLog(t, l)
	for _, name := range []string{"spare-7.tmp", "00000000000000000100.seg.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	if tmp := tmpFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("temp files not removed: %v", tmp)
	}
	checkRecords(t, l, 1, 3, 10)
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{{SegmentSize: 100}, {SegmentSize: 2 << 30}, {Sync: SyncMode(9)}} {
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Fatalf("Open accepted %+v", o)
		}
	}
}

// TestPreparedSegment checks that a roll uses the segment the background
// preparer made once the active one was half full, and that at most one
// spare exists at a time.
func TestPreparedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(nil)
	opts.SegmentSize = 64 << 10
	l := mustOpen(t, dir, opts)
	defer closeLog(t, l)
	for round := range 3 {
		segs := len(l.Segments())
		appendN(t, l, 300, 100) // past half of the active segment
		waitFor(t, func() bool { return len(tmpFiles(t, dir)) == 1 })
		spare := tmpFiles(t, dir)[0]
		for len(l.Segments()) == segs {
			appendN(t, l, 10, 100)
			if n := len(tmpFiles(t, dir)); n > 1 {
				t.Fatalf("round %d: %d spare segments", round, n)
			}
		}
		if _, err := os.Stat(spare); !os.IsNotExist(err) {
			t.Fatalf("round %d: the roll did not use the prepared spare %s (%v)", round, spare, err)
		}
	}
	checkRecords(t, l, 1, l.LastIndex(), 100)
}
