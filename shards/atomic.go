package shards

import (
	"fmt"
	"os"
	"path/filepath"
)

// metaFS is the seam for the four steps of an atomic metadata write, so a
// test can stop the sequence after any step and check what a restart makes
// of the files left behind.
type metaFS interface {
	WriteTemp(path string, data []byte) error // create, write, fsync
	Rename(from, to string) error
	SyncDir(dir string) error
}

type osMetaFS struct{}

func (osMetaFS) WriteTemp(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
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

func (osMetaFS) Rename(from, to string) error { return os.Rename(from, to) }

func (osMetaFS) SyncDir(dir string) error { return syncDir(dir) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFileAtomic replaces path with data durably and atomically (temp
// file, fsync, rename, fsync of the directory), for other packages' small
// state files such as the API's iterator key.
func WriteFileAtomic(path string, data []byte) error { return writeAtomic(osMetaFS{}, path, data) }

// writeAtomic replaces path with data so that a crash at any point leaves
// either the old content or the new one, never a mix or nothing: write a
// temp file and fsync it, rename it over the target, fsync the directory
// so the rename itself is durable.
func writeAtomic(fs metaFS, path string, data []byte) error {
	tmp := path + ".tmp"
	if err := fs.WriteTemp(tmp, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		return &dirSyncError{path: path, err: err}
	}
	return nil
}

// dirSyncError says the new content is in place but its directory entry
// may not be durable: callers must treat the new content as current (it is
// what a restart without power loss reads) rather than roll back.
type dirSyncError struct {
	path string
	err  error
}

func (e *dirSyncError) Error() string { return fmt.Sprintf("sync dir of %s: %v", e.path, e.err) }
func (e *dirSyncError) Unwrap() error { return e.err }
