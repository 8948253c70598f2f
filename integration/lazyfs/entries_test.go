package lazyfs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCreateWithoutDirFsyncIsLost(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.write("f", 0, "synced content, unsynced entry", true)
	e.cut()
	e.want("f", absent)
	if s := e.fs.Stats(); s.EntriesUndone != 1 {
		t.Errorf("EntriesUndone = %d, want 1", s.EntriesUndone)
	}
}

func TestCreateWithDirFsync(t *testing.T) {
	t.Run("entry-only", func(t *testing.T) {
		// The entry survives but the content was never synced: the file
		// comes back empty (as ext4 data=ordered can leave it).
		e := mount(t, Options{}, nil)
		e.write("f", 0, "unsynced content", false)
		e.syncDir(".")
		e.cut()
		e.want("f", "")
	})
	t.Run("entry-and-content", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.write("f", 0, "content", true)
		e.syncDir(".")
		e.cut()
		e.want("f", "content")
	})
	t.Run("subdirectory", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.mkdir("d")
		e.syncDir(".")
		e.write("d/f", 0, "content", true)
		e.syncDir("d")
		e.cut()
		e.want("d/f", "content")
	})
}

// The FSYNCDIR request must reach lazyfs however the directory is synced:
// go-fuse's own loopback directory handle would otherwise swallow it.
func TestDirFsyncArrives(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.mkdir("d")
	e.syncDir(".") // unix.Fsync on an O_RDONLY|O_DIRECTORY descriptor
	if got := e.fs.Stats().DirSyncs; got != 1 {
		t.Fatalf("DirSyncs = %d after fsync of an O_DIRECTORY fd, want 1", got)
	}
	d, err := os.Open(e.p("d")) // (*os.File).Sync, as wal and shards do
	e.must(err)
	e.must(unix.Fdatasync(int(d.Fd())))
	e.must(d.Sync())
	e.must(d.Close())
	if got := e.fs.Stats().DirSyncs; got != 3 {
		t.Fatalf("DirSyncs = %d, want 3", got)
	}
}

func TestFsyncOfRemovedDirectory(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.mkdir("d")
	e.syncDir(".")
	d, err := os.Open(e.p("d"))
	e.must(err)
	defer d.Close()
	e.must(os.Remove(e.p("d")))
	if err := d.Sync(); err != nil {
		t.Errorf("fsync of a removed directory: %v, want success as on a disk filesystem", err)
	}
	e.must(d.Close())
	e.cut()
	e.wantDir("d", true)
}

func TestRenameWithoutDirFsyncIsUndone(t *testing.T) {
	t.Run("over-existing", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("src", "new version")
		e.durable("dst", "old version")
		e.must(os.Rename(e.p("src"), e.p("dst")))
		e.want("dst", "new version")
		e.cut()
		e.want("src", "new version")
		e.want("dst", "old version")
	})
	t.Run("to-new-name", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("src", "data")
		e.must(os.Rename(e.p("src"), e.p("dst")))
		e.cut()
		e.want("src", "data")
		e.want("dst", absent)
	})
	t.Run("file-fsync-is-not-enough", func(t *testing.T) {
		e := mount(t, Options{}, nil)
		e.durable("src", "data")
		e.must(os.Rename(e.p("src"), e.p("dst")))
		e.write("dst", 4, "+more", true)
		e.cut()
		e.want("src", "data+more") // same inode: its content is durable
		e.want("dst", absent)
	})
}

func TestRenameWithDirFsyncSurvives(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("src", "new version")
	e.durable("dst", "old version")
	e.must(os.Rename(e.p("src"), e.p("dst")))
	e.syncDir(".")
	e.cut()
	e.want("src", absent)
	e.want("dst", "new version")
}

// The checkpoint pattern: write a temp file, fsync it, rename it over the
// old one, fsync the directory. Leaving out either fsync shows.
func TestAtomicReplacePattern(t *testing.T) {
	replace := func(e *env, fileSync, dirSync bool) {
		e.write("ckpt.tmp", 0, "v2", fileSync)
		e.must(os.Rename(e.p("ckpt.tmp"), e.p("ckpt")))
		if dirSync {
			e.syncDir(".")
		}
	}
	for _, c := range []struct {
		name              string
		fileSync, dirSync bool
		want              string
	}{
		{"both-fsyncs", true, true, "v2"},
		{"no-dir-fsync", true, false, "v1"},
		{"no-file-fsync", false, true, ""}, // the classic zero-length file
	} {
		t.Run(c.name, func(t *testing.T) {
			e := mount(t, Options{}, nil)
			e.durable("ckpt", "v1")
			replace(e, c.fileSync, c.dirSync)
			e.cut()
			e.want("ckpt", c.want)
			e.want("ckpt.tmp", absent)
		})
	}
}

func TestUnlinkWithoutDirFsyncIsUndone(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "durable")
	e.write("f", 0, "DURABLE? no", false)
	e.must(os.Remove(e.p("f")))
	e.cut()
	e.want("f", "durable")
}

func TestUnlinkWithDirFsyncSurvives(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "durable")
	e.must(os.Remove(e.p("f")))
	e.syncDir(".")
	e.cut()
	e.want("f", absent)
	assertStashEmpty(t, e)
}

func TestMkdirWithoutParentFsyncIsUndone(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.mkdir("d")
	e.write("d/f", 0, "data", true)
	e.syncDir("d")
	e.cut()
	e.wantDir("d", false)

	// With the parent synced the directory stays, but not the entry
	// created in it since its own last fsync.
	e.mkdir("d")
	e.syncDir(".")
	e.write("d/f", 0, "data", true)
	e.cut()
	e.wantDir("d", true)
	e.want("d/f", absent)
}

func TestRmdirWithoutParentFsyncIsUndone(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.mkdir("d")
	e.mkdir("d/sub")
	e.syncDir(".")
	e.durable("d/f", "inside")
	e.syncDir("d")
	e.must(os.Remove(e.p("d/f")))
	e.must(os.Remove(e.p("d/sub")))
	e.syncDir("d") // the removals inside d are durable...
	e.must(os.Remove(e.p("d")))
	e.cut() // ...but removing d itself is not
	e.wantDir("d", true)
	e.wantDir("d/sub", false)
	e.want("d/f", absent)

	e.must(os.RemoveAll(e.p("d")))
	e.cut() // nothing synced: d comes back whole
	e.wantDir("d", true)
	e.must(os.RemoveAll(e.p("d")))
	e.syncDir(".")
	e.cut()
	e.wantDir("d", false)
	assertStashEmpty(t, e)
}

// A rename between directories is one atomic change: an fsync of either
// directory makes it durable in both, so the file is never durable in two
// places, nor in none.
func TestCrossDirectoryRename(t *testing.T) {
	setup := func(t *testing.T) *env {
		e := mount(t, Options{}, nil)
		e.mkdir("a")
		e.mkdir("b")
		e.mkdir("a/sub")
		e.syncDir(".")
		e.durable("a/f", "file")
		e.durable("a/sub/g", "nested")
		e.syncDir("a")
		return e
	}
	for _, c := range []struct {
		name  string
		syncs []string
		moved bool
	}{
		{"no-fsync", nil, false},
		{"fsync-destination", []string{"b"}, true},
		{"fsync-source", []string{"a"}, true},
		{"fsync-other", []string{"."}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t)
			e.must(os.Rename(e.p("a/f"), e.p("b/f")))
			e.must(os.Rename(e.p("a/sub"), e.p("b/sub")))
			for _, d := range c.syncs {
				e.syncDir(d)
			}
			e.cut()
			from, to := "a", "b"
			if !c.moved {
				from, to = to, from
			}
			e.want(to+"/f", "file")
			e.want(to+"/sub/g", "nested")
			e.want(from+"/f", absent)
			e.wantDir(from+"/sub", false)
		})
	}
}

// Renames of one inode are ordered: making a later one durable makes the
// earlier ones durable too, so a directory is never durable twice.
func TestRenameChain(t *testing.T) {
	e := mount(t, Options{}, nil)
	for _, d := range []string{"a", "b", "c", "a/x"} {
		e.mkdir(d)
	}
	e.syncDir(".")
	e.syncDir("a")
	e.durable("a/x/f", "deep")
	e.must(os.Rename(e.p("a/x"), e.p("b/x")))
	e.must(os.Rename(e.p("b/x"), e.p("b/y")))
	e.must(os.Rename(e.p("b/y"), e.p("c/z")))
	e.syncDir("c")
	e.cut()
	e.wantDir("a/x", false)
	e.wantDir("b/x", false)
	e.wantDir("b/y", false)
	e.want("c/z/f", "deep")
	if logs := e.logs.String(); contains(logs, "two places") || contains(logs, "not found") {
		t.Errorf("rollback anomalies:\n%s", logs)
	}
}

func TestRenameExchange(t *testing.T) {
	for _, synced := range []bool{false, true} {
		e := mount(t, Options{}, nil)
		e.mkdir("d")
		e.syncDir(".")
		e.durable("one", "1")
		e.durable("d/two", "2")
		e.must(unix.Renameat2(unix.AT_FDCWD, e.p("one"), unix.AT_FDCWD, e.p("d/two"), unix.RENAME_EXCHANGE))
		e.want("one", "2")
		if synced {
			e.syncDir("d")
		}
		e.cut()
		if synced {
			e.want("one", "2")
			e.want("d/two", "1")
		} else {
			e.want("one", "1")
			e.want("d/two", "2")
		}
	}
}

func TestRenameNoReplace(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("a", "a")
	e.durable("b", "b")
	err := unix.Renameat2(unix.AT_FDCWD, e.p("a"), unix.AT_FDCWD, e.p("b"), unix.RENAME_NOREPLACE)
	if err != unix.EEXIST {
		t.Fatalf("RENAME_NOREPLACE onto an existing name: %v, want EEXIST", err)
	}
	e.must(unix.Renameat2(unix.AT_FDCWD, e.p("a"), unix.AT_FDCWD, e.p("c"), unix.RENAME_NOREPLACE))
	e.cut()
	e.want("a", "a")
	e.want("c", absent)
}

func TestRenameDirectoryOverEmptyDirectory(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.mkdir("new")
	e.mkdir("old")
	e.syncDir(".")
	e.durable("new/f", "payload")
	e.must(unix.Rename(e.p("new"), e.p("old"))) // os.Rename refuses to replace a directory
	e.want("old/f", "payload")
	e.cut()
	e.want("new/f", "payload")
	e.wantDir("old", true)
	e.want("old/f", absent)

	// What rename(2) refuses changes nothing.
	e.durable("old/keep", "k")
	if err := unix.Rename(e.p("new"), e.p("old")); err != unix.ENOTEMPTY {
		t.Fatalf("rename over a non-empty directory: %v, want ENOTEMPTY", err)
	}
	e.want("old/keep", "k")
	e.want("new/f", "payload")
}

func TestLinksAndSymlinks(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.durable("f", "target")
	e.must(os.Link(e.p("f"), e.p("hard")))
	e.must(os.Symlink("f", e.p("soft")))
	e.want("hard", "target")
	e.want("soft", "target")
	e.cut()
	e.want("hard", absent)
	e.want("soft", absent)

	e.must(os.Link(e.p("f"), e.p("hard")))
	e.must(os.Symlink("f", e.p("soft")))
	e.syncDir(".")
	e.must(os.Remove(e.p("f"))) // the inode lives on as "hard"
	e.write("hard", 6, "+unsynced", false)
	e.cut()
	e.want("f", "target")
	e.want("hard", "target")
	if got, err := os.Readlink(e.p("soft")); err != nil || got != "f" {
		t.Errorf("readlink soft = %q, %v", got, err)
	}
	var st unix.Stat_t
	e.must(unix.Stat(e.p("f"), &st))
	var st2 unix.Stat_t
	e.must(unix.Stat(e.p("hard"), &st2))
	if st.Ino != st2.Ino || st.Nlink != 2 {
		t.Errorf("f and hard: inodes %d/%d nlink %d, want one inode with 2 links", st.Ino, st2.Ino, st.Nlink)
	}
}

func TestMknodFifo(t *testing.T) {
	e := mount(t, Options{}, nil)
	e.must(unix.Mkfifo(e.p("fifo"), 0o600))
	e.syncDir(".")
	e.cut()
	st, err := os.Lstat(e.p("fifo"))
	e.must(err)
	if st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo came back as %v", st.Mode())
	}
}

// What was in backing before Mount is durable, whatever happens to it.
func TestExistingTreeIsDurable(t *testing.T) {
	e := mount(t, Options{}, func(b string) {
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.MkdirAll(filepath.Join(b, "x/y"), 0o755))
		must(os.WriteFile(filepath.Join(b, "x/y/f"), []byte("pre-existing"), 0o600))
		must(os.WriteFile(filepath.Join(b, "top"), []byte("top"), 0o644))
	})
	e.cut()
	e.want("x/y/f", "pre-existing")
	e.must(os.RemoveAll(e.p("x")))
	e.write("top", 0, "TOP!", false)
	e.must(os.Rename(e.p("top"), e.p("moved")))
	e.cut()
	e.want("x/y/f", "pre-existing")
	e.want("top", "top")
	e.want("moved", absent)
	if st, err := os.Stat(e.p("x/y/f")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("x/y/f mode after cut: %v, %v; want 0600", st, err)
	}
	// The mount reports backing inode numbers (fsyncDir relies on it for
	// removed directories).
	var viaMount, direct unix.Stat_t
	e.must(unix.Stat(e.p("x/y"), &viaMount))
	e.must(unix.Stat(filepath.Join(e.backing, "x/y"), &direct))
	if viaMount.Ino != direct.Ino {
		t.Errorf("inode via mount %d, in backing %d", viaMount.Ino, direct.Ino)
	}
}

func assertStashEmpty(t *testing.T, e *env) {
	t.Helper()
	des, err := os.ReadDir(e.fs.t.stash)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 0 {
		t.Errorf("stash holds %d entries, want none", len(des))
	}
}

func contains(s, sub string) bool { return len(sub) > 0 && len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// shards creates a stream by building its directory under a temporary
// name and renaming it into place, and deletes one by renaming it away
// and removing the tree.
func TestDirectoryCreateAndDeletePatterns(t *testing.T) {
	t.Run("create", func(t *testing.T) {
		for _, parentSync := range []bool{false, true} {
			e := mount(t, Options{}, nil)
			e.mkdir("stream.tmp")
			e.write("stream.tmp/meta", 0, "meta", true)
			e.syncDir("stream.tmp")
			e.must(os.Rename(e.p("stream.tmp"), e.p("stream")))
			if parentSync {
				e.syncDir(".")
			}
			e.cut()
			e.wantDir("stream.tmp", false)
			if parentSync {
				e.want("stream/meta", "meta")
			} else {
				e.wantDir("stream", false)
			}
		}
	})
	t.Run("delete", func(t *testing.T) {
		for _, parentSync := range []bool{false, true} {
			e := mount(t, Options{}, nil)
			e.mkdir("stream")
			e.mkdir("stream/shard-0")
			e.syncDir(".")
			e.syncDir("stream")
			e.durable("stream/shard-0/seg-1", "records")
			e.must(os.Rename(e.p("stream"), e.p("stream.gone")))
			if parentSync {
				e.syncDir(".")
			}
			e.must(os.RemoveAll(e.p("stream.gone")))
			e.cut()
			if parentSync {
				// The rename is durable, the removal of the tree is not.
				e.wantDir("stream", false)
				e.want("stream.gone/shard-0/seg-1", "records")
			} else {
				e.want("stream/shard-0/seg-1", "records")
				e.wantDir("stream.gone", false)
			}
		}
	})
}
