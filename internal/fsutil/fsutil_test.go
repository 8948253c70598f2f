package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The file has its mode from creation on, so a secret is never readable by
// others; only the target is left behind.
func TestWriteFileModeAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.key")
	// A temp left 0644 by an earlier crash must not lend the key its mode.
	if err := os.WriteFile(path+".tmp", []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var seen os.FileMode
	steps := spyOS{onRename: func(tmp string) {
		st, err := os.Stat(tmp)
		if err != nil {
			t.Fatal(err)
		}
		seen = st.Mode().Perm()
	}}
	if err := WriteFileSteps(steps, path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if seen != 0o600 {
		t.Errorf("temp file had mode %v before the rename, want 0600", seen)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("target: %v, %v; want mode 0600", st, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "secret" {
		t.Fatalf("target holds %q", b)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(names) != 1 {
		t.Fatalf("directory holds %v (%v), want only the target", names, err)
	}
}

// Before the rename a failure keeps the old content and removes the temp;
// after it, the caller learns that only the directory sync failed.
func TestWriteFileFailures(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meta.json")
	if err := WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	eio := syscall.EIO
	if err := WriteFileSteps(spyOS{renameErr: eio}, path, []byte("new"), 0o644); !errors.Is(err, eio) {
		t.Fatalf("failed rename: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("after a failed rename the target holds %q", b)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp left after a failed rename: %v", err)
	}
	err := WriteFileSteps(spyOS{syncErr: eio}, path, []byte("new"), 0o644)
	var dse *DirSyncError
	if !errors.As(err, &dse) || !errors.Is(err, eio) || dse.Path != path {
		t.Fatalf("failed dir sync: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("after the rename the target holds %q", b)
	}
}

type spyOS struct {
	OS
	onRename  func(tmp string)
	renameErr error
	syncErr   error
}

func (s spyOS) Rename(from, to string) error {
	if s.onRename != nil {
		s.onRename(from)
	}
	if s.renameErr != nil {
		return s.renameErr
	}
	return s.OS.Rename(from, to)
}

func (s spyOS) SyncDir(dir string) error {
	if s.syncErr != nil {
		return s.syncErr
	}
	return s.OS.SyncDir(dir)
}
