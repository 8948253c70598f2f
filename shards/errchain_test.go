package shards

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/weir-gateway/weir/wal"
)

// faultWALFS fails the logs' file work on demand, for the faults a real
// disk cannot be made to produce on cue.
type faultWALFS struct {
	wal.FS
	noSpace  atomic.Bool // creating a file fails with ENOSPC
	failSync atomic.Bool // every file Sync fails with EIO
}

func (f *faultWALFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	if flag&os.O_CREATE != 0 && f.noSpace.Load() {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultWALFile{File: file, fs: f}, nil
}

type faultWALFile struct {
	wal.File
	fs *faultWALFS
}

func (f *faultWALFile) Sync() error {
	if f.fs.failSync.Load() {
		return &os.PathError{Op: "fdatasync", Path: "segment", Err: syscall.EIO}
	}
	return f.File.Sync()
}

// The store maps log failures to its own sentinels but keeps the log's
// chain, so every error wal/doc.go promises still matches above shards.
func TestAppendKeepsWALErrorChain(t *testing.T) {
	cases := []struct {
		name  string
		fault func(*faultWALFS)
		want  []error
	}{
		{"no space for a segment", func(f *faultWALFS) { f.noSpace.Store(true) },
			[]error{ErrFull, wal.ErrNoSpace, syscall.ENOSPC}},
		{"failed fsync", func(f *faultWALFS) { f.failSync.Store(true) },
			[]error{ErrUnavailable, wal.ErrFailed, syscall.EIO}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := &faultWALFS{FS: wal.OSFS()}
			cfg := testStream("s", 1)
			cfg.SegmentSize = 64 << 10
			cfg.MaxRecordSize = 8 << 10
			s := openStore(t, t.TempDir(), withWALFS(Options{Streams: []StreamConfig{cfg}}, fsys))
			defer s.Close()
			c.fault(fsys)
			var err error
			// Enough data to need new segments, so the no-space fault is met.
			for i := 0; i < 200 && err == nil; i++ {
				_, err = s.Append(context.Background(), "s", &Record{Key: "k", Data: make([]byte, 4<<10)}, AppendOptions{})
			}
			if err == nil {
				t.Fatal("the fault never surfaced through Append")
			}
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("errors.Is(%v, %v) = false", err, w)
				}
			}
		})
	}
}
