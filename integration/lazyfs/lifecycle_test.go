package lazyfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMultipleCuts(t *testing.T) {
	e := mount(t, Options{}, nil)
	var want strings.Builder
	e.durable("log", "")
	for i := 0; i < 6; i++ {
		kept := fmt.Sprintf("kept-%d;", i)
		e.write("log", int64(want.Len()), kept, true)
		want.WriteString(kept)
		e.write("log", int64(want.Len()), fmt.Sprintf("lost-%d;", i), false)
		name := fmt.Sprintf("file-%d", i)
		e.durable(name, name)
		e.write(fmt.Sprintf("unsynced-%d", i), 0, "x", true)
		e.cut()
		e.want("log", want.String())
		for j := 0; j <= i; j++ {
			e.want(fmt.Sprintf("file-%d", j), fmt.Sprintf("file-%d", j))
			e.want(fmt.Sprintf("unsynced-%d", j), absent)
		}
	}
	e.cut() // a cut with nothing to undo undoes nothing
	e.want("log", want.String())
	if s := e.fs.Stats(); s.Cuts != 7 || s.EntriesUndone != 6 {
		t.Errorf("stats %+v: want 7 cuts, 6 entries undone", s)
	}
}

// Writers append 4 KiB records to their own files and fdatasync every
// few; meanwhile others create, rename and unlink files in their own
// directories. After the cut each log holds exactly its synced records.
func TestConcurrentWriters(t *testing.T) {
	e := mount(t, Options{}, nil)
	const writers, records, syncEvery = 6, 60, 7
	for w := 0; w < writers; w++ {
		e.durable(fmt.Sprintf("log-%d", w), "")
		e.mkdir(fmt.Sprintf("dir-%d", w))
	}
	e.syncDir(".")
	synced := make([]int, writers)
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	record := func(w, i int) []byte { return bytes.Repeat([]byte{byte('a' + (w*records+i)%26)}, pageSize) }
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			f, err := os.OpenFile(e.p(fmt.Sprintf("log-%d", w)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for i := 0; i < records; i++ {
				if _, err := f.Write(record(w, i)); err != nil {
					errs <- err
					return
				}
				if (i+1)%syncEvery == 0 {
					if err := f.Sync(); err != nil {
						errs <- err
						return
					}
					synced[w] = i + 1
				}
			}
		}()
		go func() {
			defer wg.Done()
			dir := e.p(fmt.Sprintf("dir-%d", w))
			for i := 0; i < 20; i++ {
				a, b := filepath.Join(dir, fmt.Sprint("a", i)), filepath.Join(dir, fmt.Sprint("b", i))
				if err := os.WriteFile(a, []byte("x"), 0o644); err != nil {
					errs <- err
					return
				}
				if err := os.Rename(a, b); err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					if err := os.Remove(b); err != nil {
						errs <- err
						return
					}
				}
				d, err := os.Open(dir)
				if err == nil {
					err = errors.Join(d.Sync(), d.Close())
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.cut()
	for w := 0; w < writers; w++ {
		var want bytes.Buffer
		for i := 0; i < synced[w]; i++ {
			want.Write(record(w, i))
		}
		if got := e.read(fmt.Sprintf("log-%d", w)); got != want.String() {
			t.Errorf("log-%d: %d bytes, want %d (%d synced records)", w, len(got), want.Len(), synced[w])
		}
		des, err := os.ReadDir(e.p(fmt.Sprintf("dir-%d", w)))
		e.must(err)
		if len(des) != 10 {
			t.Errorf("dir-%d holds %d entries, want the 10 b-files kept", w, len(des))
		}
	}
}

func TestLargeWrites(t *testing.T) {
	e := mount(t, Options{}, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: several FUSE writes
	e.durable("f", string(big))
	over := bytes.Repeat([]byte{'#'}, len(big)-1000)
	e.write("f", 500, string(over), false)
	e.cut()
	if got := e.read("f"); got != string(big) {
		t.Fatal("large overwrite not rolled back")
	}
	if s := e.fs.Stats(); s.Writes < 2 {
		t.Errorf("Writes = %d, want several requests for %d bytes", s.Writes, len(big))
	}
}

// A cut while a file is open refuses, changes nothing and keeps serving.
func TestCutRefusedWhileBusy(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "durable")
	f, err := os.OpenFile(e.p("f"), os.O_RDWR, 0)
	e.must(err)
	_, err = f.WriteAt([]byte("DURABLE"), 0)
	e.must(err)
	if err := e.fs.PowerCut(); !errors.Is(err, ErrBusy) {
		t.Fatalf("PowerCut with an open file: %v, want ErrBusy", err)
	}
	e.want("f", "DURABLE")
	e.must(f.Close())
	e.cut()
	e.want("f", "durable")
}

func TestUnmountLeavesNothingBehind(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("kept", "k")
	e.write("unsynced", 0, "u", false)
	e.must(os.Remove(e.p("kept")))
	e.must(e.fs.Unmount())
	if isMounted(t, e.mnt) {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(e.fs.t.stash); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stash %s left behind: %v", e.fs.t.stash, err)
	}
	// A clean unmount is a clean shutdown: nothing is rolled back.
	if b, err := os.ReadFile(filepath.Join(e.backing, "unsynced")); err != nil || string(b) != "u" {
		t.Errorf("backing/unsynced = %q, %v", b, err)
	}
	e.must(e.fs.Unmount())
	if err := e.fs.PowerCut(); !errors.Is(err, ErrNotMounted) {
		t.Errorf("PowerCut after Unmount: %v, want ErrNotMounted", err)
	}
}

func TestStats(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "12345")
	e.write("f", 5, "67890", false)
	e.write("g", 0, "g", false)
	e.cut()
	s := e.fs.Stats()
	want := Stats{Writes: 3, BytesWritten: 11, Syncs: 1, DirSyncs: 1, Cuts: 1, BytesUndone: 5, EntriesUndone: 1}
	if s != want {
		t.Errorf("Stats() = %+v\nwant       %+v", s, want)
	}
}

func TestStashIsCollected(t *testing.T) {
	e := mount(t, Options{}, nil)
	for i := 0; i < 20; i++ {
		e.durable("seg", fmt.Sprint(i))
		e.must(os.Remove(e.p("seg")))
		e.mkdir("d")
		e.syncDir(".")
		e.must(os.Remove(e.p("d")))
		e.syncDir(".")
	}
	assertStashEmpty(t, e)
	e.cut()
	e.want("seg", absent)
	e.wantDir("d", false)
}

func TestMountErrors(t *testing.T) {
	base := t.TempDir()
	if _, err := Mount(filepath.Join(base, "missing"), filepath.Join(base, "mnt"), Options{}); err == nil {
		t.Error("Mount of a missing backing directory succeeded")
	}
	b := filepath.Join(base, "b")
	if err := os.MkdirAll(filepath.Join(b, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if f, err := Mount(b, filepath.Join(b, "inner"), Options{}); err == nil {
		f.Unmount()
		t.Error("Mount inside its own backing directory succeeded")
	}
	if f, err := Mount(b, filepath.Join(base, "mnt"), Options{StashDir: "/dev/shm/lazyfs-stash-test"}); err == nil || !errors.Is(err, ErrCrossDevice) {
		if f != nil {
			f.Unmount()
		}
		if !isSameDev(t, "/dev/shm", b) {
			t.Errorf("stash on another filesystem: %v, want ErrCrossDevice", err)
		}
	}
	os.RemoveAll("/dev/shm/lazyfs-stash-test")
}

func isSameDev(t *testing.T, a, b string) bool {
	var sa, sb syscall.Stat_t
	if syscall.Stat(a, &sa) != nil || syscall.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

func TestEnsureFUSE(t *testing.T) {
	if err := EnsureFUSE(); err != nil {
		t.Fatalf("EnsureFUSE: %v", err)
	}
}

// A process that dies with its mount up leaves a dead mount; SweepStale
// removes it, and leaves live mounts alone.
func TestSweepStale(t *testing.T) {
	live := mount(t, Options{}, nil)
	base := t.TempDir()
	backing, mnt := filepath.Join(base, "backing"), filepath.Join(base, "mnt")
	if err := os.Mkdir(backing, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", "--", "mount", backing, mnt, "-", "-")
	cmd.Env = append(os.Environ(), helperEnv+"=mount")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if isMounted(t, mnt) {
			SweepStale(base)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "mounted" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	if swept, err := SweepStale(os.TempDir()); err != nil || len(swept) != 0 {
		t.Fatalf("SweepStale with only live mounts: %v, %v", swept, err)
	}
	e := cmd.Process.Kill()
	cmd.Wait()
	if e != nil {
		t.Fatal(e)
	}
	deadline := time.Now().Add(10 * time.Second)
	var swept []string
	for len(swept) == 0 && time.Now().Before(deadline) {
		if swept, err = SweepStale(base); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(swept) != 1 || swept[0] != mnt {
		t.Fatalf("SweepStale = %v, want [%s]", swept, mnt)
	}
	if isMounted(t, mnt) {
		t.Error("dead mount still listed")
	}
	if !isMounted(t, live.mnt) {
		t.Error("live mount was removed")
	}
}
