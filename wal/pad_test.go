package wal

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// padOpts: segments of 16 pages, so groups pad in mid-segment and rolls
// seal segments that hold padding.
func padOpts() Options {
	return Options{Name: "pad", SegmentSize: 64 << 10, RecycleSegments: 2}
}

// batchOf makes n payloads of size bytes for lane l, recognisable by
// lane and position.
func batchOf(lane uint16, from, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = payloadFor(int(lane)*1_000_000+from+i, size)
	}
	return out
}

// TestPaddingWritesWholePages: a group that ends less than its own size
// short of a page boundary is padded to it, so the next group starts on
// a fresh page; a small group is not. Records read back through the
// padding by index and by lane, sealed segments with padding verify
// against their footers, and a reopened log reads the same records and
// continues its newest segment without padding (an earlier process may
// have left a torn write beyond the data).
func TestPaddingWritesWholePages(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, padOpts())
	lanes := []*Lane{l.Lane(1), l.Lane(2)}
	want := map[uint64][]byte{}
	wantLane := map[uint64]uint16{}
	add := func(lane uint16, batch [][]byte) {
		t.Helper()
		first, err := lanes[lane-1].AppendBatch(context.Background(), batch)
		if err != nil {
			t.Fatalf("AppendBatch: %v", err)
		}
		for i, p := range batch {
			want[first+uint64(i)] = p
			wantLane[first+uint64(i)] = lane
		}
	}

	// Three lone records of 112 bytes do not pad: the rest of the page
	// would hold many more groups of their size.
	for i := range 3 {
		add(2, batchOf(2, i, 1, 100))
	}
	if off := l.w.off; off != 32+3*112 {
		t.Fatalf("small writes ended at %d, want %d (no padding)", off, 32+3*112)
	}
	// 20 frames of 212 bytes from 368 end at 4608: the 3,584 bytes to
	// the next page are fewer than the group's 4,240, so it pads.
	add(1, batchOf(1, 0, 20, 200))
	if off := l.w.off; off != 8192 {
		t.Fatalf("write ended at %d, want the page boundary 8192", off)
	}
	if st := l.Stats(); st.PadBytes != 8192-4608 {
		t.Fatalf("PadBytes = %d, want %d", st.PadBytes, 8192-4608)
	}
	// One small record does not pad: groups have been small enough on
	// average (628 bytes) that the next would fit in its page.
	add(2, batchOf(2, 3, 1, 100))
	if off := l.w.off; off != 8192+112 {
		t.Fatalf("small write ended at %d, want %d (no padding)", off, 8192+112)
	}
	// Groups of both lanes until the log rolls twice.
	for i := 0; len(l.Segments()) < 3; i++ {
		add(uint16(1+i%2), batchOf(uint16(1+i%2), 100+i*30, 17+i%5, 150+i*7%100))
	}
	if st := l.Stats(); st.PadBytes < 3*4096/2 {
		t.Fatalf("only %d bytes of padding over %d segments", st.PadBytes, len(l.Segments()))
	}
	check := func(l *Log) {
		t.Helper()
		n := 0
		_, err := l.ReadLanes(l.FirstIndex(), 0, 0, func(i uint64, lane uint16, p []byte) error {
			if string(p) != string(want[i]) || lane != wantLane[i] {
				t.Fatalf("record %d: lane %d %.20q, want lane %d %.20q", i, lane, p, wantLane[i], want[i])
			}
			n++
			return nil
		})
		if err != nil || n != len(want) {
			t.Fatalf("read %d of %d records: %v", n, len(want), err)
		}
		for _, ln := range []uint16{1, 2} {
			got := 0
			for from := l.FirstIndex(); from <= l.LastIndex(); {
				next, err := l.Lane(ln).ReadFrom(from, 7, 0, func(i uint64, p []byte) error {
					if wantLane[i] != ln || string(p) != string(want[i]) {
						t.Fatalf("lane %d read record %d of lane %d", ln, i, wantLane[i])
					}
					got++
					return nil
				})
				if err != nil {
					t.Fatalf("lane %d ReadFrom(%d): %v", ln, from, err)
				}
				from = next
			}
			if c, err := l.Lane(ln).Count(l.FirstIndex(), l.LastIndex()+1); err != nil || got != int(c) {
				t.Fatalf("lane %d: read %d records, Count %d, %v", ln, got, c, err)
			}
			// A range that cuts segments is counted through their frames.
			from, to := l.FirstIndex()+13, l.LastIndex()-11
			inRange := 0
			for i, lane := range wantLane {
				if lane == ln && i >= from && i < to {
					inRange++
				}
			}
			if c, err := l.Lane(ln).Count(from, to); err != nil || int(c) != inRange {
				t.Fatalf("lane %d: Count(%d, %d) = %d, %v; want %d", ln, from, to, c, err, inRange)
			}
		}
		for i := range want {
			if p, err := l.Read(i); err != nil || string(p) != string(want[i]) {
				t.Fatalf("Read(%d): %.20q, %v", i, p, err)
			}
		}
		if err := l.Verify(); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	check(l)
	lastBefore := l.LastIndex()
	closeLog(t, l)

	l = mustOpen(t, dir, padOpts())
	lanes = []*Lane{l.Lane(1), l.Lane(2)}
	if l.LastIndex() != lastBefore {
		t.Fatalf("LastIndex %d after reopen, want %d", l.LastIndex(), lastBefore)
	}
	check(l)
	segs := l.Segments()
	newest := segs[len(segs)-1]
	for range 3 {
		add(1, batchOf(1, 5000, 20, 200))
	}
	if st := l.Stats(); len(l.Segments()) == len(segs) && st.PadBytes != 0 {
		t.Fatalf("the continued segment %s got %d bytes of padding", newest.Path, st.PadBytes)
	}
	check(l)
	closeLog(t, l)
	l = mustOpen(t, dir, padOpts())
	check(l)
	closeLog(t, l)
	noBroken(t, dir)
}

// TestPaddingEndsDataInARecycledFile: a write that ends in padding
// carries no end marker, so in a reused file the stale frames of the old
// segment follow it directly. Open must take that as a clean end (no
// tail repair, no .broken file, the segment goes on), not as a torn write.
func TestPaddingEndsDataInARecycledFile(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, padOpts())
	fillSegments(t, l, 4)
	if _, err := l.TruncateFront(l.Segments()[2].FirstIndex); err != nil {
		t.Fatal(err)
	}
	for l.Stats().Recycled == 0 {
		appendBatchN(t, l, 20, 200)
	}
	pad := l.Stats().PadBytes
	appendBatchN(t, l, 20, 200) // a fresh page's group, padded
	if l.Stats().PadBytes == pad || l.w.off%4096 != 0 {
		t.Fatalf("the last group did not end in padding (at %d)", l.w.off)
	}
	// The bytes after the padding are the old segment's frames.
	b := make([]byte, frameHeaderSize)
	if _, err := l.w.f.ReadAt(b, l.w.off); err != nil || isZero(b) {
		t.Fatalf("no stale bytes follow the padding at %d: %x, %v", l.w.off, b, err)
	}
	first, last := l.FirstIndex(), l.LastIndex()
	closeLog(t, l)

	l = mustOpen(t, dir, padOpts())
	defer closeLog(t, l)
	noBroken(t, dir) // a clean stop, not a torn write
	segs := l.Segments()
	if segs[len(segs)-1].Sealed {
		t.Fatalf("the newest segment was sealed: %+v", segs[len(segs)-1])
	}
	if l.FirstIndex() != first || l.LastIndex() != last {
		t.Fatalf("records %d..%d after reopen, want %d..%d", l.FirstIndex(), l.LastIndex(), first, last)
	}
	appendBatchN(t, l, 3, 50)
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestDamagedPaddingIsFound: padding is covered by its frame's CRC and by
// the sealed segment's checksum; a changed byte in it is damage.
func TestDamagedPaddingIsFound(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, padOpts())
	fillSegments(t, l, 2)
	closeLog(t, l)
	seg := filepath.Join(dir, segmentName(1))
	// The first group (20 frames of 212 bytes from 32) padded 4272..8192.
	patchFile(t, seg, 6000, []byte{1})
	l = mustOpen(t, dir, padOpts())
	defer closeLog(t, l)
	if err := l.Verify(); err == nil {
		t.Fatal("Verify found no damage in changed padding")
	}
	if _, err := os.Stat(seg); err != nil {
		t.Fatal(err)
	}
}

// fillSegments appends groups of 20 records until the log has n segments.
func fillSegments(t *testing.T, l *Log, n int) {
	t.Helper()
	for len(l.Segments()) < n {
		appendBatchN(t, l, 20, 200)
	}
}

// noBroken fails if tail repair copied bytes aside in dir.
func noBroken(t *testing.T, dir string) {
	t.Helper()
	if broken, _ := filepath.Glob(filepath.Join(dir, "*.broken")); len(broken) > 0 {
		t.Fatalf("tail repair ran: %v", broken)
	}
}

func appendBatchN(t *testing.T, l *Log, n, size int) {
	t.Helper()
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = payloadFor(i, size)
	}
	if _, err := l.AppendBatch(context.Background(), batch); err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
}

// TestPaddingExpectsTheUsualGroup: a group smaller than the rest of its
// page is still padded when groups usually are larger than that rest: the
// next one would not fit, and its sync would write the page again.
func TestPaddingExpectsTheUsualGroup(t *testing.T) {
	opts := padOpts()
	opts.SegmentSize = 1 << 20
	l := mustOpen(t, t.TempDir(), opts)
	defer closeLog(t, l)
	for range 24 {
		appendBatchN(t, l, 16, 200) // 3,392 bytes: pads to the page
		if l.w.off%4096 != 0 {
			t.Fatalf("a group of 3,392 bytes ended at %d, not on a page", l.w.off)
		}
	}
	appendBatchN(t, l, 5, 200) // 1,060 bytes, 3,036 short of the page
	if l.w.off%4096 != 0 {
		t.Fatalf("a small group after large ones ended at %d, not on a page", l.w.off)
	}
	appendBatchN(t, l, 1, 20) // 32 bytes: the page has room for the usual group
	if l.w.off%4096 != 32 {
		t.Fatalf("a lone record ended at %d, want 32 bytes into a page (no padding)", l.w.off)
	}
}

// TestGroupCutAtThePage: when what is queued would carry a group a little
// way into the next page, the group is committed up to the page (and
// padded) and the rest starts the next group; when more than a page waits,
// the group takes it all.
func TestGroupCutAtThePage(t *testing.T) {
	fsys := newFaultFS()
	opts := padOpts()
	opts.FS = fsys
	l := mustOpen(t, t.TempDir(), opts)
	defer closeLog(t, l)
	appendBatchN(t, l, 20, 200) // pads to 8192; frames of 212 bytes
	ctx := context.Background()

	// A lone record (padded to 12288: the usual group would not fit in
	// the rest of its page), and behind its blocked sync 20 more: 19 fit
	// before 16384, the 20th would cross it.
	release := fsys.blockSyncs()
	c := newCompletions()
	if err := l.AppendDeferred(ctx, payloadFor(0, 200), completion{c}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.written.Load() == 21 })
	for i := range 20 {
		if err := l.AppendDeferred(ctx, payloadFor(i, 200), completion{c}); err != nil {
			t.Fatal(err)
		}
	}
	groups := l.Stats().Groups
	release()
	c.wait(t, 21)
	if got := l.Stats().Groups - groups; got != 2 {
		t.Fatalf("the 20 queued records took %d groups, want 2 (cut at the page)", got)
	}
	if off := l.w.off; off != 16384+212 {
		t.Fatalf("the log ends at %d, want %d: 19 records and padding to 16384, then 1", off, 16384+212)
	}

	// More than a page queued: one group.
	release = fsys.blockSyncs()
	if err := l.AppendDeferred(ctx, payloadFor(0, 200), completion{c}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.written.Load() == 42 })
	for i := range 40 {
		if err := l.AppendDeferred(ctx, payloadFor(i, 200), completion{c}); err != nil {
			t.Fatal(err)
		}
	}
	groups = l.Stats().Groups
	release()
	c.wait(t, 41)
	if got := l.Stats().Groups - groups; got != 1 {
		t.Fatalf("40 queued records took %d groups, want 1", got)
	}
	for i := uint64(1); i <= l.LastIndex(); i++ {
		if _, err := l.Read(i); err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
	}
}

// TestNoPaddingAtTheSegmentEnd: where the next group would not fit in the
// segment after the padding, it starts a new segment anyway: the group is
// not padded, and the sealed segment's footer stays inside its pages.
func TestNoPaddingAtTheSegmentEnd(t *testing.T) {
	dir := t.TempDir()
	opts := padOpts()
	opts.SegmentSize = 8192
	l := mustOpen(t, dir, opts)
	defer closeLog(t, l)
	appendBatchN(t, l, 16, 200) // 32..3424, padded to 4096
	if l.w.off != 4096 {
		t.Fatalf("first group ended at %d, want 4096", l.w.off)
	}
	appendBatchN(t, l, 16, 200) // 4096..7488: another would not fit after padding
	if l.w.off != 7488 {
		t.Fatalf("second group ended at %d, want 7488 (no padding)", l.w.off)
	}
	appendBatchN(t, l, 16, 200) // rolls
	segs := l.Segments()
	if len(segs) != 2 || !segs[0].Sealed {
		t.Fatalf("segments %+v", segs)
	}
	fi, err := os.Stat(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 8192 {
		t.Fatalf("the sealed segment is %d bytes: its footer went past its last page", fi.Size())
	}
}
