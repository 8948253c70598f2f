package lazyfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteWithoutFsyncIsLost(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("a", "durable")
	e.write("a", 7, "+appended", false)
	e.durable("b", "")
	e.write("b", 0, "never synced", false)
	e.want("a", "durable+appended") // visible at once, like a page cache
	e.cut()
	e.want("a", "durable")
	e.want("b", "")
	if s := e.fs.Stats(); s.BytesUndone != uint64(len("+appended")+len("never synced")) || s.Cuts != 1 {
		t.Errorf("stats %+v: want BytesUndone %d, Cuts 1", s, len("+appended")+len("never synced"))
	}
}

func TestWriteWithFsyncSurvives(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("a", "one")
	e.write("a", 3, "+two", true)
	e.write("a", 7, "+three", false)
	e.cut()
	e.want("a", "one+two")
}

func TestPartialOverwriteReverts(t *testing.T) {
	e := mount(t, Options{}, nil)
	orig := make([]byte, 3*pageSize+123)
	for i := range orig {
		orig[i] = byte('a' + i%26)
	}
	e.durable("f", string(orig))
	e.write("f", 100, strings.Repeat("X", 100), false)              // inside page 0
	e.write("f", pageSize-10, strings.Repeat("Y", pageSize), false) // straddles pages 0-1-2... not 2
	e.write("f", 3*pageSize+100, strings.Repeat("Z", 50), false)    // over the durable tail and beyond
	e.cut()
	e.want("f", string(orig))

	// A sync in the middle keeps what came before it.
	e.write("f", 0, "SYNCED", true)
	e.write("f", 0, "lost!!", false)
	e.write("f", 2*pageSize, "lost too", false)
	e.cut()
	want := append([]byte("SYNCED"), orig[6:]...)
	e.want("f", string(want))
}

func TestTruncateRevertsSize(t *testing.T) {
	const data = "0123456789abcdefghij"
	t.Run("ftruncate-shrink", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("f", data)
		f, err := os.OpenFile(e.p("f"), os.O_RDWR, 0)
		e.must(err)
		e.must(f.Truncate(5))
		e.must(f.Close())
		e.want("f", data[:5])
		e.cut()
		e.want("f", data)
	})
	t.Run("truncate-by-name-extend", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("f", data)
		e.must(os.Truncate(e.p("f"), 100))
		e.cut()
		e.want("f", data)
	})
	t.Run("shrink-extend-write", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("f", data)
		e.must(os.Truncate(e.p("f"), 3))
		e.must(os.Truncate(e.p("f"), 30))
		e.write("f", 10, "new", false)
		e.cut()
		e.want("f", data)
	})
	t.Run("open-O_TRUNC", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("f", data)
		e.must(os.WriteFile(e.p("f"), []byte("short"), 0o644)) // O_TRUNC|O_CREAT on an existing file
		e.want("f", "short")
		e.cut()
		e.want("f", data)
	})
	t.Run("synced-truncate-stays", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("f", data)
		f, err := os.OpenFile(e.p("f"), os.O_RDWR, 0)
		e.must(err)
		e.must(f.Truncate(4))
		e.must(unix.Fdatasync(int(f.Fd())))
		e.must(f.Truncate(2))
		e.must(f.Close())
		e.cut()
		e.want("f", data[:4])
	})
}

func TestFallocate(t *testing.T) {
	orig := strings.Repeat("q", 2*pageSize)
	e := mount(t, Options{}, nil)
	e.durable("f", orig)
	f, err := os.OpenFile(e.p("f"), os.O_RDWR, 0)
	e.must(err)
	fd := int(f.Fd())
	e.must(unix.Fallocate(fd, 0, 0, 1<<20)) // extends the size
	e.must(unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 100, 5000))
	e.must(f.Close())
	if st, err := os.Stat(e.p("f")); err != nil || st.Size() != 1<<20 {
		t.Fatalf("after fallocate: %v, %v; want size %d", st, err, 1<<20)
	}
	if got := e.read("f"); got[100] != 0 || got[5099] != 0 || got[5100] != 'q' {
		t.Fatalf("punch hole did not pass through")
	}
	e.cut()
	e.want("f", orig)
}

func TestFdatasyncIsDurable(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "base")
	f, err := os.OpenFile(e.p("f"), os.O_RDWR|os.O_APPEND, 0)
	e.must(err)
	_, err = f.WriteString("+kept")
	e.must(err)
	e.must(unix.Fdatasync(int(f.Fd())))
	_, err = f.WriteString("+lost")
	e.must(err)
	e.must(f.Close())
	e.cut()
	e.want("f", "base+kept")
	if s := e.fs.Stats(); s.DataSyncs != 1 || s.Syncs != 2 {
		t.Errorf("stats %+v: want 1 fdatasync among 2 syncs", s)
	}
}

// sync_file_range(2) only starts writeback; it promises nothing about
// durability and FUSE does not even forward it.
func TestSyncFileRangeIsNotDurable(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "base")
	f, err := os.OpenFile(e.p("f"), os.O_RDWR, 0)
	e.must(err)
	_, err = f.WriteAt([]byte("+range"), 4)
	e.must(err)
	e.must(unix.SyncFileRange(int(f.Fd()), 0, 0,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER))
	e.must(f.Close())
	e.cut()
	e.want("f", "base")
}

func TestOSyncWritesAreDurable(t *testing.T) {
	for _, flag := range []int{unix.O_SYNC, unix.O_DSYNC} {
		e := mount(t, Options{}, nil)
		e.durable("f", "base")
		f, err := os.OpenFile(e.p("f"), os.O_WRONLY|os.O_APPEND|flag, 0)
		e.must(err)
		_, err = f.WriteString("+synced")
		e.must(err)
		e.must(f.Close())
		e.cut()
		e.want("f", "base+synced")
	}
}

func TestCopyFileRangeIsTracked(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("src", "SOURCE")
	e.durable("dst", "destination")
	in, err := os.Open(e.p("src"))
	e.must(err)
	defer in.Close()
	out, err := os.OpenFile(e.p("dst"), os.O_RDWR, 0)
	e.must(err)
	offIn, offOut := int64(0), int64(5)
	n, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(out.Fd()), &offOut, 6, 0)
	e.must(err)
	e.must(in.Close())
	e.must(out.Close())
	if n != 6 {
		t.Fatalf("copied %d bytes, want 6", n)
	}
	e.want("dst", "destiSOURCE")
	e.cut()
	e.want("dst", "destination")
}

// Shared mappings work (FUSE_DIRECT_IO_ALLOW_MMAP): dirty pages reach
// Write on msync, munmap or writeback, and only msync makes them durable.
func TestMmapWrites(t *testing.T) {
	e := mount(t, Options{}, nil)
	orig := strings.Repeat(".", 2*pageSize)
	e.durable("f", orig)
	helper(t, "mmap", e.p("f"), "10", "SYNCED", "1")
	helper(t, "mmap", e.p("f"), strconv.Itoa(pageSize+10), "UNSYNCED", "0")
	e.cut()
	want := []byte(orig)
	copy(want[10:], "SYNCED")
	e.want("f", string(want))
}

// A file modified while unlinked but open is rolled back too when the
// unlink is undone.
func TestWriteToUnlinkedFileIsUndone(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "durable")
	f, err := os.OpenFile(e.p("f"), os.O_RDWR, 0)
	e.must(err)
	e.must(os.Remove(e.p("f")))
	_, err = f.WriteAt([]byte("DURABLE??"), 0)
	e.must(err)
	e.must(f.Close())
	e.cut()
	e.want("f", "durable")
}

func TestRandomWritesMatchModel(t *testing.T) {
	e := mount(t, Options{}, nil)
	rng := rand.New(rand.NewPCG(7, 7))
	model := []byte(strings.Repeat("-", 3*pageSize))
	e.durable("f", string(model))
	durableModel := bytes.Clone(model)
	f, err := os.OpenFile(e.p("f"), os.O_RDWR, 0)
	e.must(err)
	defer func() { f.Close() }()
	for round := 0; round < 5; round++ {
		for i := 0; i < 40; i++ {
			switch op := rng.IntN(10); {
			case op < 7:
				off := rng.IntN(len(model) + pageSize)
				buf := make([]byte, 1+rng.IntN(2*pageSize))
				for j := range buf {
					buf[j] = byte('A' + rng.IntN(26))
				}
				_, err := f.WriteAt(buf, int64(off))
				e.must(err)
				if end := off + len(buf); end > len(model) {
					model = append(model, make([]byte, end-len(model))...)
				}
				copy(model[off:], buf)
			case op < 9:
				size := rng.IntN(len(model) + pageSize)
				e.must(f.Truncate(int64(size)))
				if size < len(model) {
					model = model[:size]
				} else {
					model = append(model, make([]byte, size-len(model))...)
				}
			default:
				e.must(f.Sync())
				durableModel = bytes.Clone(model)
			}
		}
		if got := e.read("f"); got != string(model) {
			t.Fatalf("round %d: live content differs from model", round)
		}
		e.must(f.Close())
		e.cut()
		if got := e.read("f"); got != string(durableModel) {
			t.Fatalf("round %d: after cut len %d, want durable len %d", round, len(got), len(durableModel))
		}
		model = bytes.Clone(durableModel)
		f, err = os.OpenFile(e.p("f"), os.O_RDWR, 0)
		e.must(err)
	}
}
