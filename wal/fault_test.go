package wal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// faultFS wraps the real filesystem with the faults the log must survive
// and counters the tests assert on.
type faultFS struct {
	FS
	syncs         atomic.Int64 // file syncs
	dirSyncs      atomic.Int64
	failNextWrite atomic.Bool  // next WriteAt to a segment file fails with EIO
	failNextSync  atomic.Bool  // next file Sync fails with EIO
	noSpace       atomic.Bool  // creating or filling a new file fails with ENOSPC
	blocked       atomic.Int64 // Syncs waiting at the gate
	written       atomic.Int64 // bytes passed to WriteAt
	pages         atomic.Int64 // 4 KiB pages touched by WriteAt calls, each counted once per sync (see pagesSince)

	mu       sync.Mutex
	syncGate chan struct{}         // if set, Sync waits until it is closed
	files    map[string]*faultFile // by current name
}

func newFaultFS() *faultFS { return &faultFS{FS: OSFS()} }

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 && f.noSpace.Load() {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	ff := &faultFile{File: file, fs: f}
	ff.name.Store(&name)
	f.mu.Lock()
	if f.files == nil {
		f.files = map[string]*faultFile{}
	}
	f.files[name] = ff
	f.mu.Unlock()
	return ff, nil
}

// Rename keeps the open file's name current, so faults aimed at segment
// files hit a spare once it became one.
func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.FS.Rename(oldpath, newpath); err != nil {
		return err
	}
	f.mu.Lock()
	if ff := f.files[oldpath]; ff != nil {
		ff.name.Store(&newpath)
		delete(f.files, oldpath)
		f.files[newpath] = ff
	}
	f.mu.Unlock()
	return nil
}

func (f *faultFS) SyncDir(dir string) error {
	f.dirSyncs.Add(1)
	return f.FS.SyncDir(dir)
}

// blockSyncs makes every Sync wait until the returned func is called.
func (f *faultFS) blockSyncs() (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.syncGate = gate
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.syncGate = nil
			f.mu.Unlock()
			close(gate)
		})
	}
}

type faultFile struct {
	File
	fs   *faultFS
	name atomic.Pointer[string]

	dmu   sync.Mutex
	dirty map[int64]bool // pages written since the last Sync
}

var errInjected = fmt.Errorf("injected: %w", syscall.EIO)

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	name := *f.name.Load()
	if strings.HasSuffix(name, ".tmp") && f.fs.noSpace.Load() {
		return 0, &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	if strings.HasSuffix(name, segSuffix) && f.fs.failNextWrite.CompareAndSwap(true, false) {
		// A torn write: half the bytes land, then the error.
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, &os.PathError{Op: "write", Path: name, Err: errInjected}
	}
	f.fs.written.Add(int64(len(p)))
	f.touch(off, len(p))
	return f.File.WriteAt(p, off)
}

// touch records the 4 KiB pages a write dirtied: a sync writes each dirty
// page whole, so pages × 4 KiB is what the device gets at least.
func (f *faultFile) touch(off int64, n int) {
	if n == 0 {
		return
	}
	f.dmu.Lock()
	if f.dirty == nil {
		f.dirty = map[int64]bool{}
	}
	for p := off / 4096; p <= (off+int64(n)-1)/4096; p++ {
		f.dirty[p] = true
	}
	f.dmu.Unlock()
}

func (f *faultFile) flushPages() {
	f.dmu.Lock()
	f.fs.pages.Add(int64(len(f.dirty)))
	clear(f.dirty)
	f.dmu.Unlock()
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	gate := f.fs.syncGate
	f.fs.mu.Unlock()
	if gate != nil {
		f.fs.blocked.Add(1)
		<-gate
		f.fs.blocked.Add(-1)
	}
	f.fs.syncs.Add(1)
	f.flushPages()
	if f.fs.failNextSync.CompareAndSwap(true, false) {
		return &os.PathError{Op: "fdatasync", Path: *f.name.Load(), Err: errInjected}
	}
	return f.File.Sync()
}

// syncWriter lets tests read what the log logged.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// testOpts are small-segment options so tests roll often.
func testOpts(fsys FS) Options {
	return Options{Name: "test-shard", SegmentSize: 4 << 10, FS: fsys}
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func closeLog(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// payloadFor makes a recognisable payload of n bytes for index-like key i.
func payloadFor(i, n int) []byte {
	p := make([]byte, n)
	s := fmt.Sprintf("rec-%d|", i)
	for j := range p {
		p[j] = s[j%len(s)]
	}
	return p
}

// appendN appends n records; record i holds payloadFor(i) so any later
// read can be checked against its index.
func appendN(t testing.TB, l *Log, n, size int) {
	t.Helper()
	for range n {
		// Interval mode shows records to readers only once synced, so the
		// next index comes from what was written, not from LastIndex.
		want := max(l.LastIndex(), l.written.Load()) + 1
		idx, err := l.Append(context.Background(), payloadFor(int(want), size))
		if err != nil {
			t.Fatalf("Append %d: %v", want, err)
		}
		if idx != want {
			t.Fatalf("Append returned index %d, want %d", idx, want)
		}
	}
}

// checkRecords asserts records first..last hold payloadFor(i) (i = index).
func checkRecords(t testing.TB, l *Log, first, last uint64, size int) {
	t.Helper()
	if got := l.FirstIndex(); got != first {
		t.Fatalf("FirstIndex = %d, want %d", got, first)
	}
	if got := l.LastIndex(); got != last {
		t.Fatalf("LastIndex = %d, want %d", got, last)
	}
	for i := first; i <= last; i++ {
		p, err := l.Read(i)
		if err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
		if !bytes.Equal(p, payloadFor(int(i), size)) {
			t.Fatalf("Read(%d) = %q, want %q", i, p, payloadFor(int(i), size))
		}
	}
}

func tmpFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func logTo(w *syncWriter) zerolog.Logger { return zerolog.New(w) }
