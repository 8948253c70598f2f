package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// copyDir copies the files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestOpenVersion1Fixture: a log written by format version 1 (commit
// 1d7be9b, testdata/README.md) opens in place, reads back, takes appends
// in its version 1 active segment, and retention reuses its files.
func TestOpenVersion1Fixture(t *testing.T) {
	dir := copyDir(t, "testdata/v1")
	fsys := newFaultFS()
	opts := testOpts(fsys)
	l := mustOpen(t, dir, opts)
	checkRecords(t, l, 1, 100, 100)
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify of a version 1 log: %v", err)
	}
	appendN(t, l, 60, 100) // continues segment 73 (version 1), then rolls
	segs := l.Segments()
	if len(segs) < 4 || segs[2].FirstIndex != 73 || !segs[2].Sealed {
		t.Fatalf("segments %+v", segs)
	}
	if removed, err := l.TruncateFront(73); err != nil || len(removed) != 2 {
		t.Fatalf("TruncateFront: %v, %v", removed, err)
	}
	appendN(t, l, 80, 100)
	if st := l.Stats(); st.Recycled == 0 {
		t.Fatalf("no version 1 file was reused: %+v", st)
	}
	last := l.LastIndex()
	closeLog(t, l)
	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	checkRecords(t, l, 73, last, 100)
	rep, err := VerifyDir(dir, "v1", nil)
	if err != nil || len(rep.Damage) != 0 || rep.Records != last-72 {
		t.Fatalf("VerifyDir: %+v, %v", rep, err)
	}
}

// TestRecycleSegments: the files retention removes become the next
// segments; nothing is zero-filled while a file is free; a reopened log
// keeps appending into a recycled active segment without a repair; all
// records read back.
func TestRecycleSegments(t *testing.T) {
	dir := t.TempDir()
	logs := &syncWriter{}
	opts := testOpts(nil)
	opts.Logger = logTo(logs)
	l := mustOpen(t, dir, opts)
	appendN(t, l, 200, 100)
	// A spare the preparer zero-filled before any file was free is used
	// up first.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if removed, err := l.TruncateFront(150); err != nil || len(removed) < 3 {
		t.Fatalf("TruncateFront: %v, %v", removed, err)
	}
	free, _ := filepath.Glob(filepath.Join(dir, "*.free"))
	if len(free) != DefaultRecycleSegments {
		t.Fatalf("free files %v, want %d", free, DefaultRecycleSegments)
	}
	before := l.Stats()
	// Enough for two rolls, so both free files become segments.
	for l.Stats().Recycled < before.Recycled+2 {
		appendN(t, l, 10, 100)
	}
	after := l.Stats()
	if after.Created != before.Created {
		t.Fatalf("a file was zero-filled while free files existed: %+v -> %+v", before, after)
	}
	if after.PrepBytes-before.PrepBytes > 2*uint64(opts.SegmentSize) {
		t.Fatalf("reusing two files wrote %d bytes", after.PrepBytes-before.PrepBytes)
	}
	// Mid-segment in a recycled file: Close and reopen appends in place.
	appendN(t, l, 3, 100)
	last := l.LastIndex()
	segs := l.Segments()
	closeLog(t, l)
	l = mustOpen(t, dir, opts)
	if strings.Contains(logs.String(), "repaired") {
		t.Fatalf("reopening a recycled active segment repaired it: %s", logs.String())
	}
	if got := l.Segments(); len(got) != len(segs) {
		t.Fatalf("reopen changed the segments: %+v, was %+v", got, segs)
	}
	appendN(t, l, 5, 100)
	checkRecords(t, l, l.FirstIndex(), last+5, 100)
	closeLog(t, l)
}

// TestRecycledStaleFramesNeverRead builds the worst case by hand: a
// recycled file whose stale frames are valid for their OLD indexes, at the
// very offsets where the new segment's next records go. Open must stop at
// the new data's end marker, and the stale frames must fail for the new
// indexes.
func TestRecycledStaleFramesNeverRead(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(nil)
	l := mustOpen(t, dir, opts)
	appendN(t, l, 100, 100) // 1..36, 37..72, 73..100
	if _, err := l.TruncateFront(37); err != nil {
		t.Fatal(err)
	}
	for l.Stats().Recycled == 0 {
		appendN(t, l, 1, 100)
	}
	segs := l.Segments()
	act := segs[len(segs)-1]
	last := l.LastIndex()
	closeLog(t, l)
	data, err := os.ReadFile(act.Path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := decodeSegHeader(data)
	if err != nil || h.flags&segFlagRecycled == 0 {
		t.Fatalf("active segment header %+v, %v: not marked recycled", h, err)
	}
	// Same-size records: the stale frame of old record k+1 sits exactly
	// where new record act.First+k+1 would go, behind the end marker.
	off := act.Bytes
	if !bytes.Equal(data[off:off+frameHeaderSize], make([]byte, frameHeaderSize)) {
		t.Fatalf("no end marker after the data at %d", off)
	}
	staleIdx := uint64(1 + (off-segHeaderSize)/corrFrameSize)
	if _, _, err := decodeFrame(data[off+frameHeaderSize-frameHeaderSize:], act.LastIndex+1); err == nil {
		t.Fatal("the end marker decoded as a frame")
	}
	if _, _, err := decodeFrame(data[off+frameHeaderSize:], staleIdx+1); err != nil {
		t.Logf("stale frame after the marker is not intact for old index %d (%v); checking the one at the marker's place instead", staleIdx+1, err)
	}
	// Remove the marker as a torn write could: now a stale frame valid for
	// its old index is where the next record goes.
	stale := appendFrame(nil, staleIdx, payloadFor(int(staleIdx), 100))
	patchFile(t, act.Path, off, stale)
	if _, _, err := decodeFrame(stale, act.LastIndex+1); !errors.Is(err, errBadCRC) {
		t.Fatalf("a stale frame decoded at the new index: %v", err)
	}
	logs := &syncWriter{}
	opts.Logger = logTo(logs)
	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	if l.LastIndex() != last {
		t.Fatalf("LastIndex %d after a stale frame, want %d", l.LastIndex(), last)
	}
	if !strings.Contains(logs.String(), "repaired torn tail") {
		t.Fatalf("no repair logged: %s", logs.String())
	}
	broken, _ := filepath.Glob(act.Path + ".*.broken")
	if len(broken) != 1 {
		t.Fatalf("cut bytes not copied aside: %v", broken)
	}
	b, err := os.ReadFile(broken[0])
	if err != nil || !bytes.HasPrefix(b, stale) {
		t.Fatalf("the .broken file does not start with the cut bytes: %v", err)
	}
	appendN(t, l, 40, 100)
	checkRecords(t, l, l.FirstIndex(), last+40, 100)
}

// TestTornTailCopiedAside: a torn write in the newest segment is cut off
// and its bytes are kept in <segment>.<offset>.broken, not destroyed.
func TestTornTailCopiedAside(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	appendN(t, l, 10, 100)
	seg := l.Segments()[0]
	closeLog(t, l)
	garbage := fill(300, 0xA5)
	patchFile(t, seg.Path, seg.Bytes, garbage)
	l = mustOpen(t, dir, testOpts(nil))
	b, err := os.ReadFile(seg.Path + ".1152.broken")
	if seg.Bytes != 1152 || err != nil || !bytes.Equal(b, garbage) {
		t.Fatalf("broken copy: %d bytes, %v (segment data ends at %d)", len(b), err, seg.Bytes)
	}
	segs := l.Segments()
	if !segs[0].Sealed || segs[0].LastIndex != 10 {
		t.Fatalf("repaired segment %+v, want sealed at 10", segs[0])
	}
	appendN(t, l, 5, 100)
	checkRecords(t, l, 1, 15, 100)
	closeLog(t, l)
}

// TestFooterTags: with Options.Tag the segments know the smallest and
// largest tag, sealed ones from their footer after a reopen.
func TestFooterTags(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(nil)
	opts.Tag = func(p []byte) (uint64, bool) {
		if len(p) < 8 {
			return 0, false
		}
		return uint64(p[0])<<8 | uint64(p[1]), true
	}
	l := mustOpen(t, dir, opts)
	for i := range 100 {
		p := payloadFor(i, 100)
		p[0], p[1] = byte(i>>8), byte(i)
		if _, err := l.Append(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(context.Background(), []byte("x")); err != nil { // no tag
		t.Fatal(err)
	}
	want := l.Segments()
	closeLog(t, l)
	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	got := l.Segments()
	for i, s := range got {
		if !reflect.DeepEqual(s, want[i]) {
			t.Fatalf("segment %d: %+v after reopen, %+v before", i, s, want[i])
		}
	}
	if !got[0].Tagged || got[0].MinTag != 0 || got[0].MaxTag != 35 || !got[1].Tagged || got[1].MinTag != 36 {
		t.Fatalf("tags %+v", got)
	}
	if last := got[len(got)-1]; last.Tagged {
		t.Fatalf("a segment with an untagged record claims tags: %+v", last)
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestScrubFindsDamage: the background scrub verifies footer-trusted
// segments by itself, first the one a reader touches.
func TestScrubFindsDamage(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(nil)
	l := mustOpen(t, dir, opts)
	appendN(t, l, 100, 100)
	segs := l.Segments()
	closeLog(t, l)
	flipByte(t, segs[1].Path, corrOffset(segs[1], 50)+frameHeaderSize+3)
	logs := &syncWriter{}
	opts.Logger = logTo(logs)
	opts.ScrubRate = 1 << 30
	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	if _, err := l.Read(40); err != nil { // an intact record of the damaged segment
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Stats().Scrubbed == 2 })
	if !strings.Contains(logs.String(), "failed verification") {
		t.Fatalf("scrub did not report the damage: %s", logs.String())
	}
	var ce *CorruptionError
	if err := l.Verify(); !errors.As(err, &ce) || ce.Segment != segs[1].Path || ce.Offset != corrOffset(segs[1], 50) {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := l.Read(50); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of the damaged record: %v", err)
	}
}

// TestSealedEmptyNewestReplaced: an empty log sealed and reopened takes
// appends: the new segment has the sealed empty one's name and replaces it.
func TestSealedEmptyNewestReplaced(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(nil))
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
	l = mustOpen(t, dir, testOpts(nil))
	if s := l.Segments(); len(s) != 1 || !s[0].Sealed {
		t.Fatalf("reopened sealed empty log: %+v", s)
	}
	appendN(t, l, 50, 100)
	if s := l.Segments(); s[0].FirstIndex != 1 || s[0].LastIndex < 1 {
		t.Fatalf("segments after appends: %+v", s)
	}
	closeLog(t, l)
	l = mustOpen(t, dir, testOpts(nil))
	defer closeLog(t, l)
	checkRecords(t, l, 1, 50, 100)
	if rep, err := VerifyDir(dir, "x", nil); err != nil || len(rep.Damage) != 0 {
		t.Fatalf("VerifyDir: %+v, %v", rep, err)
	}
}
