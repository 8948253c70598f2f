package lazyfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkOverhead measures what lazyfs costs a writer, so that nobody
// mistakes harness overhead for the gateway's: sequential 4 KiB appends,
// with and without an fdatasync after each, on the mount and directly on
// the backing filesystem. Every lazyfs case also runs the same number of
// operations directly and reports the ratio as x-direct. "lazyfs" does
// not forward syncs (the default); "lazyfs-syncbacking" does, so its
// fdatasync costs a real disk flush as the direct one does.
func BenchmarkOverhead(b *testing.B) {
	for _, sync := range []bool{false, true} {
		op := "write"
		if sync {
			op = "write+fdatasync"
		}
		b.Run(op+"/direct", func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(pageSize)
			b.ResetTimer()
			appendRecords(b, dir, b.N, sync)
		})
		for _, syncBacking := range []bool{false, true} {
			name := op + "/lazyfs"
			if syncBacking {
				name += "-syncbacking"
			}
			b.Run(name, func(b *testing.B) {
				e := mount(b, Options{SyncBacking: syncBacking}, nil)
				direct := filepath.Join(filepath.Dir(e.backing), "direct")
				if err := os.Mkdir(direct, 0o755); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(pageSize)
				b.ResetTimer()
				lazy := appendRecords(b, e.mnt, b.N, sync)
				b.StopTimer()
				base := appendRecords(b, direct, b.N, sync)
				b.ReportMetric(float64(lazy)/float64(base), "x-direct")
			})
		}
	}
}

// appendRecords appends n 4 KiB records to files in dir, starting a new
// file every 16 MiB (and removing the old one, with a directory fsync so
// lazyfs can drop it), and returns the time taken.
func appendRecords(b *testing.B, dir string, n int, sync bool) time.Duration {
	const perFile = 4096
	rec := make([]byte, pageSize)
	for i := range rec {
		rec[i] = byte(i)
	}
	start := time.Now()
	var f *os.File
	rotate := func(i int) {
		if f != nil {
			name := f.Name()
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			if err := os.Remove(name); err != nil {
				b.Fatal(err)
			}
			d, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := unix.Fsync(d); err != nil {
				b.Fatal(err)
			}
			unix.Close(d)
		}
		var err error
		if f, err = os.OpenFile(filepath.Join(dir, fmt.Sprint("seg-", i)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if i%perFile == 0 {
			rotate(i)
		}
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if sync {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
		}
	}
	elapsed := time.Since(start)
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return elapsed
}
