package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SyncDir makes creations, renames and removals in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Steps are the three steps of an atomic write. Callers whose crash tests
// stop the sequence after any step pass their own to WriteFileSteps.
type Steps interface {
	// WriteTemp creates path with perm, writes data and fsyncs it.
	WriteTemp(path string, data []byte, perm os.FileMode) error
	Rename(from, to string) error
	SyncDir(dir string) error
}

// OS is Steps on real files.
type OS struct{}

// WriteTemp replaces any leftover of an earlier crash rather than reusing
// it, because an existing file keeps its old mode under O_TRUNC.
func (OS) WriteTemp(path string, data []byte, perm os.FileMode) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (OS) Rename(from, to string) error { return os.Rename(from, to) }
func (OS) SyncDir(dir string) error     { return SyncDir(dir) }

// WriteFile replaces path with data durably and atomically; the file has
// mode perm (less the umask) from its creation on.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileSteps(OS{}, path, data, perm)
}

// WriteFileSteps is WriteFile through the given steps. A failure before the
// rename removes the temp file and leaves the old content; a failure of the
// last step is a *DirSyncError.
func WriteFileSteps(s Steps, path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := s.WriteTemp(tmp, data, perm); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := s.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := s.SyncDir(filepath.Dir(path)); err != nil {
		return &DirSyncError{Path: path, Err: err}
	}
	return nil
}

// DirSyncError says the new content is in place but its directory entry
// may not be durable: callers must treat the new content as current (it is
// what a restart without power loss reads) rather than roll back.
type DirSyncError struct {
	Path string
	Err  error
}

func (e *DirSyncError) Error() string { return fmt.Sprintf("sync dir of %s: %v", e.Path, e.Err) }
func (e *DirSyncError) Unwrap() error { return e.Err }
