package wal

import (
	"os"
	"sort"

	"github.com/weir-gateway/weir/internal/fsutil"
	"golang.org/x/sys/unix"
)

// FS is the filesystem seam: the log does all its file work through it, so
// tests can inject failed writes, failed syncs and a full disk, and count
// syncs. Paths are joined by the log (filepath.Join).
type FS interface {
	// OpenFile opens or creates a file like os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	// ReadDir returns the names of the entries in dir, sorted.
	ReadDir(dir string) ([]string, error)
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes creations, renames and removals in dir durable.
	SyncDir(dir string) error
}

// File is an open segment file. The log never uses the file offset: all
// I/O is positional so readers and the writer can share one descriptor.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes written data durable. The OS implementation uses
	// fdatasync: on preallocated space the inode does not change, so the
	// kernel skips the journal commit a full fsync would force.
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// OSFS returns the FS of real files.
func OSFS() FS { return osFS{} }

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	// Fd once: each Fd call re-checks the blocking mode; the hot path
	// calls Sync per commit.
	return osFile{f: f, fd: int(f.Fd())}, nil
}

func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error {
	return os.MkdirAll(dir, perm)
}

func (osFS) ReadDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

func (osFS) SyncDir(dir string) error { return fsutil.SyncDir(dir) }

type osFile struct {
	f  *os.File
	fd int
}

func (o osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o osFile) Close() error                             { return o.f.Close() }

func (o osFile) Sync() error {
	// Fdatasync still flushes a size change, so it is also correct after
	// the file grew; it is only cheaper when it did not.
	for {
		err := unix.Fdatasync(o.fd)
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: err}
			}
			return nil
		}
	}
}

func (o osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
