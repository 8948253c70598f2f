package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// Layout used by the corruption cases: 4 KiB segments of 100-byte records
// (112-byte frames), 36 records per segment; 100 records make segments
// 1..36, 37..72 and 73..100.
const (
	corrRecSize   = 100
	corrFrameSize = frameHeaderSize + corrRecSize
	corrRecords   = 100
)

func corrOffset(seg SegmentInfo, index uint64) int64 {
	return segHeaderSize + int64(index-seg.FirstIndex)*corrFrameSize
}

func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	patchFile(t, path, off, []byte{b[off] ^ 0x5A})
}

func fill(n int, c byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestCorruption(t *testing.T) {
	type want struct {
		last    uint64 // repaired: LastIndex after Open
		warn    bool   // repaired: a warning about cut bytes is logged
		segment int    // corrupt: index into Segments() of the named file
		offset  func(segs []SegmentInfo) int64
	}
	cases := []struct {
		name    string
		damage  func(t *testing.T, segs []SegmentInfo)
		corrupt bool
		// lazy: the damage is inside a sealed segment that Open takes at
		// its footer's word; Verify (the scrub, `weir verify`) finds it.
		lazy bool
		want want
	}{
		{
			name: "torn_tail",
			damage: func(t *testing.T, segs []SegmentInfo) {
				off := corrOffset(segs[2], corrRecords)
				patchFile(t, segs[2].Path, off+corrFrameSize/2, make([]byte, corrFrameSize/2))
			},
			want: want{last: corrRecords - 1, warn: true},
		},
		{
			name: "torn_tail_short_file",
			damage: func(t *testing.T, segs []SegmentInfo) {
				off := corrOffset(segs[2], corrRecords)
				if err := os.Truncate(segs[2].Path, off+30); err != nil {
					t.Fatal(err)
				}
			},
			want: want{last: corrRecords - 1, warn: true},
		},
		{
			name: "zero_filled_tail",
			damage: func(t *testing.T, segs []SegmentInfo) {
				off := corrOffset(segs[2], corrRecords-1)
				patchFile(t, segs[2].Path, off, make([]byte, 2*corrFrameSize))
			},
			want: want{last: corrRecords - 2, warn: false},
		},
		{
			name: "bad_crc_tail",
			damage: func(t *testing.T, segs []SegmentInfo) {
				flipByte(t, segs[2].Path, corrOffset(segs[2], corrRecords)+frameHeaderSize+7)
			},
			want: want{last: corrRecords - 1, warn: true},
		},
		{
			name: "bad_length",
			damage: func(t *testing.T, segs []SegmentInfo) {
				var b [4]byte
				binary.LittleEndian.PutUint32(b[:], 1<<20) // past the end of the file
				patchFile(t, segs[2].Path, corrOffset(segs[2], corrRecords)+4, b[:])
			},
			want: want{last: corrRecords - 1, warn: true},
		},
		{
			name: "bad_length_huge",
			damage: func(t *testing.T, segs []SegmentInfo) {
				patchFile(t, segs[2].Path, corrOffset(segs[2], corrRecords)+4, []byte{0xff, 0xff, 0xff, 0xff})
			},
			want: want{last: corrRecords - 1, warn: true},
		},
		{
			name: "garbage_tail",
			damage: func(t *testing.T, segs []SegmentInfo) {
				patchFile(t, segs[2].Path, corrOffset(segs[2], corrRecords+1), fill(500, 0xA5))
			},
			want: want{last: corrRecords, warn: true},
		},
		{
			name: "corrupt_sealed_segment",
			damage: func(t *testing.T, segs []SegmentInfo) {
				flipByte(t, segs[0].Path, corrOffset(segs[0], 2)+frameHeaderSize+30)
			},
			corrupt: true, lazy: true,
			want: want{segment: 0, offset: func(s []SegmentInfo) int64 { return corrOffset(s[0], 2) }},
		},
		{
			name: "bad_length_sealed_segment",
			damage: func(t *testing.T, segs []SegmentInfo) {
				var b [4]byte
				binary.LittleEndian.PutUint32(b[:], 50)
				patchFile(t, segs[1].Path, corrOffset(segs[1], 40)+4, b[:])
			},
			corrupt: true, lazy: true,
			want: want{segment: 1, offset: func(s []SegmentInfo) int64 { return corrOffset(s[1], 40) }},
		},
		{
			name:    "bad_footer_checksum",
			damage:  func(t *testing.T, segs []SegmentInfo) { flipByte(t, segs[0].Path, segs[0].Bytes+20) },
			corrupt: true, lazy: true,
			want: want{segment: 0, offset: func(s []SegmentInfo) int64 { return s[0].Bytes }},
		},
		{
			name: "bad_trailer",
			damage: func(t *testing.T, segs []SegmentInfo) {
				st, err := os.Stat(segs[1].Path)
				if err != nil {
					t.Fatal(err)
				}
				flipByte(t, segs[1].Path, st.Size()-10)
			},
			corrupt: true, lazy: true,
			want: want{segment: 1, offset: func(s []SegmentInfo) int64 { return s[1].Bytes }},
		},
		{
			name: "footer_wrong_segment_checksum",
			damage: func(t *testing.T, segs []SegmentInfo) {
				rewriteFooter(t, segs[0], func(ft *footer) { ft.segCRC ^= 1 })
			},
			corrupt: true, lazy: true,
			want: want{segment: 0, offset: func(s []SegmentInfo) int64 { return s[0].Bytes }},
		},
		{
			name: "footer_wrong_count",
			damage: func(t *testing.T, segs []SegmentInfo) {
				// A footer that is consistent in itself (its lane table
				// agrees) but one record short of what the next segment's
				// name says.
				rewriteFooter(t, segs[1], func(ft *footer) {
					ft.count--
					n := len(ft.lanes) - 1
					ft.lanes[n].count--
					ft.lanes[n].last--
				})
			},
			corrupt: true,
			want:    want{segment: 1, offset: func(s []SegmentInfo) int64 { return s[1].Bytes }},
		},
		{
			// Consistent in itself, so Open trusts it; the frames say
			// lane 0, and verification finds the difference.
			name: "footer_wrong_lanes",
			damage: func(t *testing.T, segs []SegmentInfo) {
				rewriteFooter(t, segs[0], func(ft *footer) { ft.lanes[0].lane = 7 })
			},
			corrupt: true, lazy: true,
			want: want{segment: 0, offset: func(s []SegmentInfo) int64 { return s[0].Bytes }},
		},
		{
			name: "footer_wrong_index",
			damage: func(t *testing.T, segs []SegmentInfo) {
				rewriteFooter(t, segs[0], func(ft *footer) { ft.offsets[1] += frameHeaderSize })
			},
			corrupt: true, lazy: true,
			want: want{segment: 0, offset: func(s []SegmentInfo) int64 { return s[0].Bytes }},
		},
		{
			name: "truncated_sealed_segment",
			damage: func(t *testing.T, segs []SegmentInfo) {
				if err := os.Truncate(segs[0].Path, corrOffset(segs[0], 10)+5); err != nil {
					t.Fatal(err)
				}
			},
			corrupt: true,
			want:    want{segment: 0, offset: func(s []SegmentInfo) int64 { return corrOffset(s[0], 10) }},
		},
		{
			name: "garbage_after_sealed_segment",
			damage: func(t *testing.T, segs []SegmentInfo) {
				patchFile(t, segs[0].Path, segs[0].Bytes, []byte{1})
			},
			corrupt: true, lazy: true, // the footer's first byte
			want: want{segment: 0, offset: func(s []SegmentInfo) int64 { return s[0].Bytes }},
		},
		{
			name:    "bad_segment_header",
			damage:  func(t *testing.T, segs []SegmentInfo) { flipByte(t, segs[1].Path, 3) },
			corrupt: true,
			want:    want{segment: 1, offset: func([]SegmentInfo) int64 { return 0 }},
		},
		{
			name:    "bad_newest_segment_header",
			damage:  func(t *testing.T, segs []SegmentInfo) { flipByte(t, segs[2].Path, 17) },
			corrupt: true,
			want:    want{segment: 2, offset: func([]SegmentInfo) int64 { return 0 }},
		},
		{
			name: "missing_middle_segment",
			damage: func(t *testing.T, segs []SegmentInfo) {
				if err := os.Remove(segs[1].Path); err != nil {
					t.Fatal(err)
				}
			},
			corrupt: true,
			want:    want{segment: 0, offset: func(s []SegmentInfo) int64 { return s[0].Bytes }},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := mustOpen(t, dir, testOpts(nil))
			appendN(t, l, corrRecords, corrRecSize)
			segs := l.Segments()
			closeLog(t, l)
			if len(segs) != 3 || segs[1].FirstIndex != 37 || segs[2].FirstIndex != 73 {
				t.Fatalf("unexpected layout: %+v", segs)
			}
			tc.damage(t, segs)

			logs := &syncWriter{}
			opts := testOpts(nil)
			opts.Logger = logTo(logs)
			l, err := Open(dir, opts)
			if tc.lazy {
				// Open succeeds; verification names the damage, and every
				// intact record stays readable meanwhile.
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer closeLog(t, l)
				err = l.Verify()
			}
			if tc.corrupt {
				var ce *CorruptionError
				if !errors.As(err, &ce) {
					t.Fatalf("Open: err = %v, want *CorruptionError", err)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("errors.Is(err, ErrCorrupt) = false for %v", err)
				}
				if ce.Shard != opts.Name || ce.Segment != segs[tc.want.segment].Path || ce.Offset != tc.want.offset(segs) {
					t.Fatalf("CorruptionError{%q, %q, %d}, want {%q, %q, %d}: %v", ce.Shard, ce.Segment, ce.Offset,
						opts.Name, segs[tc.want.segment].Path, tc.want.offset(segs), err)
				}
				if l != nil && !tc.lazy {
					t.Fatal("Open returned a log with an error")
				}
				if tc.lazy {
					// Verify again: the damage stays reported.
					if err := l.Verify(); !errors.As(err, &ce) || ce.Offset != tc.want.offset(segs) {
						t.Fatalf("second Verify: %v", err)
					}
					last := tc.want.offset(segs) // records before the damage read back
					_ = last
					if p, err := l.Read(segs[tc.want.segment].FirstIndex); err != nil && !errors.Is(err, ErrCorrupt) || err == nil && !bytes.Equal(p, payloadFor(int(segs[tc.want.segment].FirstIndex), corrRecSize)) {
						t.Fatalf("Read of the damaged segment's first record: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got := strings.Contains(logs.String(), "repaired torn tail"); got != tc.want.warn {
				t.Fatalf("warning logged = %v, want %v; log: %s", got, tc.want.warn, logs.String())
			}
			checkRecords(t, l, 1, tc.want.last, corrRecSize)
			// The repaired log takes appends at the next index and keeps them.
			appendN(t, l, 3, corrRecSize)
			closeLog(t, l)
			logs = &syncWriter{}
			opts.Logger = logTo(logs)
			l = mustOpen(t, dir, opts)
			defer closeLog(t, l)
			if strings.Contains(logs.String(), "repaired") {
				t.Fatalf("second open repaired again: %s", logs.String())
			}
			checkRecords(t, l, 1, tc.want.last+3, corrRecSize)
		})
	}
}

// rewriteFooter re-encodes a sealed segment's footer after change, with
// valid checksums: damage only a verification against the frames finds.
func rewriteFooter(t *testing.T, seg SegmentInfo, change func(*footer)) {
	t.Helper()
	f, err := os.OpenFile(seg.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file := osFile{f: f, fd: int(f.Fd())}
	ft, off, err := readFooter(file, seg.FirstIndex)
	if err != nil {
		t.Fatal(err)
	}
	change(ft)
	if err := writeSeal(file, ft, off); err != nil {
		t.Fatal(err)
	}
}
