package lazyfs

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountWatchdog bounds how long one test may keep a mount.
const mountWatchdog = 2 * time.Minute

// env is one mounted lazyfs with its directories.
type env struct {
	t       testing.TB
	fs      *FS
	backing string
	mnt     string
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mount mounts a fresh lazyfs under a temp dir; populate, if given, fills
// the backing directory first. Fails (never skips) if mounting fails: CI
// runs as root. The mount is removed when the test ends, failed or not.
func mount(t testing.TB, opts Options, populate func(backing string)) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{t: t, backing: filepath.Join(base, "backing"), mnt: filepath.Join(base, "mnt"), logs: &syncBuffer{}}
	if err := os.Mkdir(e.backing, 0o755); err != nil {
		t.Fatal(err)
	}
	if populate != nil {
		populate(e.backing)
	}
	if opts.Logger == nil {
		opts.Logger = log.New(e.logs, "", 0)
	}
	f, err := Mount(e.backing, e.mnt, opts)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	e.fs = f
	// The test process is also the FUSE server: if the server deadlocks,
	// the test's own syscalls hang unkillably. Abort the connection so the
	// test fails with errors instead of hanging the whole run.
	watchdog := time.AfterFunc(mountWatchdog, func() {
		t.Errorf("watchdog: mount still in use after %v; aborting the FUSE connection", mountWatchdog)
		if err := f.Abort(); err != nil {
			t.Errorf("Abort: %v", err)
		}
	})
	t.Cleanup(func() {
		watchdog.Stop()
		if err := f.Unmount(); err != nil {
			t.Errorf("Unmount: %v (aborting instead)", err)
			if err := f.Abort(); err != nil {
				t.Errorf("Abort: %v", err)
			}
		}
		if isMounted(t, e.mnt) {
			t.Errorf("%s still mounted after Unmount", e.mnt)
		}
		if t.Failed() {
			t.Logf("lazyfs log:\n%s", e.logs.String())
		}
	})
	return e
}

func isMounted(t testing.TB, mnt string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && unescapeMountinfo(fields[4]) == mnt {
			return true
		}
	}
	return false
}

func (e *env) p(name string) string { return filepath.Join(e.mnt, name) }

func (e *env) cut() {
	e.t.Helper()
	if err := e.fs.PowerCut(); err != nil {
		e.t.Fatalf("PowerCut: %v", err)
	}
}

// write writes data at off into name (created if missing) and fsyncs the
// file if sync.
func (e *env) write(name string, off int64, data string, sync bool) {
	e.t.Helper()
	f, err := os.OpenFile(e.p(name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(data), off); err != nil {
		e.t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// durable creates name with data, fsyncs it and its directory.
func (e *env) durable(name, data string) {
	e.t.Helper()
	e.write(name, 0, data, true)
	e.syncDir(filepath.Dir(name))
}

// syncDir fsyncs a directory of the mount the way a careful program does.
func (e *env) syncDir(name string) {
	e.t.Helper()
	fd, err := unix.Open(e.p(name), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		e.t.Fatalf("fsync dir %s: %v", name, err)
	}
}

const absent = "<absent>"

// read returns name's content, or absent.
func (e *env) read(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(e.p(name))
	if errors.Is(err, fs.ErrNotExist) {
		return absent
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) want(name, want string) {
	e.t.Helper()
	if got := e.read(name); got != want {
		e.t.Errorf("%s = %q, want %q", name, clip(got), clip(want))
	}
}

func (e *env) wantDir(name string, want bool) {
	e.t.Helper()
	st, err := os.Lstat(e.p(name))
	switch {
	case err == nil && !st.IsDir():
		e.t.Errorf("%s is not a directory", name)
	case err == nil && !want:
		e.t.Errorf("directory %s exists, want it gone", name)
	case errors.Is(err, fs.ErrNotExist) && want:
		e.t.Errorf("directory %s is gone, want it", name)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		e.t.Fatal(err)
	}
}

func (e *env) mkdir(name string) {
	e.t.Helper()
	if err := os.Mkdir(e.p(name), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
