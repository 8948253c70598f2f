package wal

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// generateLog writes a shard log of n sealed segments of segSize bytes of
// 200-byte records directly (no committer, no syncs): the retained data of
// a full retention window in seconds instead of a long publish. With
// footers false the sealed segments are version 1 (header v1, no footer,
// zero tail), so Open must scan them as the version 1 code did.
func generateLog(tb testing.TB, dir string, n int, segSize int64, footers bool) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	payload := payloadFor(0, 200)
	next := uint64(1)
	buf := make([]byte, 0, segSize+64<<10)
	for i := 0; i <= n; i++ { // n sealed + the active one
		first := next
		version := uint16(segVersion)
		if !footers {
			version = 1
		}
		buf = append(buf[:0], encodeSegHeaderVersion(first, version, 0)...)
		var offs []uint32
		var count uint64
		active := i == n
		for (active && count < 10) || (!active && int64(len(buf))+frameSize(len(payload)) <= segSize) {
			if count%indexStride == 0 {
				offs = append(offs, uint32(len(buf)))
			}
			buf = appendFrame(buf, next, payload)
			next++
			count++
		}
		end := int64(len(buf))
		switch {
		case !active && footers:
			crc := crc32.Checksum(buf, castagnoli)
			buf = append(buf, sealTail(newFooter(first, count, offs, tagRange{}, lane0(first, count, end), crc), end)...)
		default:
			buf = append(buf, make([]byte, segSize-end)...)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(first)), buf, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkOpenRetained opens 4 shard logs holding WEIR_OPEN_BENCH_MIB
// MiB of 200-byte records in all (default 256; BENCHMARKS.md used 4096),
// in 16 MiB segments, version 2 footers against version 1 scans. Each op
// opens and closes all 4 logs; the page cache is dropped before each op
// when WEIR_OPEN_BENCH_COLD=1 (root), as after a reboot.
func BenchmarkOpenRetained(b *testing.B) {
	mib := 256
	if s := os.Getenv("WEIR_OPEN_BENCH_MIB"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		mib = v
	}
	const shards, segSize = 4, 16 << 20
	perShard := mib / 4 / 16
	for _, footers := range []bool{true, false} {
		name := "v2-footers"
		if !footers {
			name = "v1-scan"
		}
		b.Run(fmt.Sprintf("%s/%dMiB", name, mib), func(b *testing.B) {
			root := b.TempDir()
			for s := range shards {
				generateLog(b, filepath.Join(root, strconv.Itoa(s)), perShard, segSize, footers)
			}
			b.ResetTimer()
			for range b.N {
				if os.Getenv("WEIR_OPEN_BENCH_COLD") == "1" {
					b.StopTimer()
					if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				for s := range shards {
					l, err := Open(filepath.Join(root, strconv.Itoa(s)), Options{Name: "bench", ScrubRate: -1})
					if err != nil {
						b.Fatal(err)
					}
					if got := len(l.Segments()); got != perShard+1 {
						b.Fatalf("%d segments, want %d", got, perShard+1)
					}
					l.Close()
				}
			}
		})
	}
}

// TestGeneratedLogOpens keeps the generator honest: both variants open,
// verify and read back.
func TestGeneratedLogOpens(t *testing.T) {
	for _, footers := range []bool{true, false} {
		dir := t.TempDir()
		generateLog(t, dir, 2, 64<<10, footers)
		l := mustOpen(t, dir, Options{Name: "gen", SegmentSize: 64 << 10})
		if err := l.Verify(); err != nil {
			t.Fatal(err)
		}
		if rep, err := VerifyDir(dir, "gen", nil); err != nil || len(rep.Damage) != 0 {
			t.Fatalf("VerifyDir: %+v %v", rep, err)
		}
		n := 0
		if _, err := l.ReadFrom(1, 0, 0, func(uint64, []byte) error { n++; return nil }); err != nil || uint64(n) != l.LastIndex() {
			t.Fatalf("read %d of %d: %v", n, l.LastIndex(), err)
		}
		closeLog(t, l)
	}
}
