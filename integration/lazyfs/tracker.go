package lazyfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// dirent is one directory entry as durable state knows it: a name's inode
// (backing inode number) and whether that inode is a directory.
type dirent struct {
	ino uint64
	dir bool
}

// dirUndo is a directory changed since its last fsync: durable holds its
// entries as of that fsync (or as of mount, or empty if it was created
// since). A directory without a dirUndo is durable as it is.
type dirUndo struct {
	durable map[string]dirent
}

// renameRec is a rename not yet made durable by an fsync of either of its
// directories. It is one atomic operation (as in a journaling filesystem):
// when it becomes durable it is applied to both directories' durable
// entries at once, so an inode is never durable in two places or none.
type renameRec struct {
	from, to         uint64 // directory inodes (equal for a rename within one directory)
	fromName, toName string
	moved            dirent  // the inode that moved from -> to
	swapped          *dirent // RENAME_EXCHANGE: the inode that moved to -> from
}

func (r *renameRec) moves(ino uint64) bool {
	return r.moved.ino == ino || (r.swapped != nil && r.swapped.ino == ino)
}

// tracker holds everything PowerCut needs to undo, keyed by backing inode
// number. Removed inodes are kept alive in the stash until no durable entry
// can refer to them, so their numbers are never reused while state about
// them exists.
type tracker struct {
	backing     string
	stash       string
	syncBacking bool

	// ns serializes every namespace change and directory fsync: a
	// directory's durable entries must be snapshotted before the first
	// change after a sync, and cross-directory renames resolved atomically.
	ns      sync.Mutex
	dirs    map[uint64]*dirUndo
	renames []renameRec
	stashed map[uint64]bool

	// mu guards the files map only; each fileUndo has its own lock so that
	// writers to different files do not serialize. Order: ns before mu.
	mu    sync.Mutex
	files map[uint64]*fileUndo

	writes, bytesWritten, syncs, dataSyncs, dirSyncs atomic.Uint64
	cuts, bytesUndone, entriesUndone                 atomic.Uint64
}

func newTracker(backing, stash string, syncBacking bool) *tracker {
	t := &tracker{backing: backing, stash: stash, syncBacking: syncBacking}
	t.reset()
	return t
}

// reset forgets everything: the backing tree as it is becomes durable.
// It does not take ns: callers either hold it or are unmounted.
func (t *tracker) reset() {
	t.dirs = map[uint64]*dirUndo{}
	t.renames = nil
	t.stashed = map[uint64]bool{}
	t.mu.Lock()
	t.files = map[uint64]*fileUndo{}
	t.mu.Unlock()
}

func (t *tracker) file(ino uint64) *fileUndo {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.files[ino]
	if u == nil {
		u = &fileUndo{}
		t.files[ino] = u
	}
	return u
}

// newFileLocked records an inode created since the last cut. Any state
// under the same number belonged to a dead inode. Caller holds ns.
func (t *tracker) newFileLocked(ino uint64) {
	delete(t.dirs, ino)
	t.mu.Lock()
	t.files[ino] = fresh()
	t.mu.Unlock()
}

// forgetLocked drops state left under a reused inode number by an inode
// without content to track (symlink, device, fifo). Caller holds ns.
func (t *tracker) forgetLocked(ino uint64) {
	delete(t.dirs, ino)
	t.mu.Lock()
	delete(t.files, ino)
	t.mu.Unlock()
}

// newDirLocked records a directory created since the last cut: none of
// its entries is durable until it is fsynced. Caller holds ns.
func (t *tracker) newDirLocked(ino uint64) {
	t.dirs[ino] = &dirUndo{durable: map[string]dirent{}}
	t.mu.Lock()
	delete(t.files, ino)
	t.mu.Unlock()
}

// beforeChangeLocked snapshots a directory's entries before its first
// change since its last fsync. Caller holds ns.
func (t *tracker) beforeChangeLocked(ino uint64, path string) error {
	if _, ok := t.dirs[ino]; ok {
		return nil
	}
	ents, err := listDir(path)
	if err != nil {
		return err
	}
	t.dirs[ino] = &dirUndo{durable: ents}
	return nil
}

// dirSyncedLocked makes directory ino's current entries durable, together
// with every pending rename in or out of it and, because operations on one
// inode are ordered, every earlier pending rename of the inodes those move.
// Caller holds ns.
func (t *tracker) dirSyncedLocked(ino uint64) {
	resolve := make([]bool, len(t.renames))
	chained := map[uint64]bool{}
	for i := len(t.renames) - 1; i >= 0; i-- {
		r := &t.renames[i]
		hit := r.from == ino || r.to == ino || chained[r.moved.ino] ||
			(r.swapped != nil && chained[r.swapped.ino])
		if !hit {
			continue
		}
		resolve[i] = true
		chained[r.moved.ino] = true
		if r.swapped != nil {
			chained[r.swapped.ino] = true
		}
	}
	kept := t.renames[:0]
	for i, r := range t.renames {
		if !resolve[i] {
			kept = append(kept, r)
			continue
		}
		t.applyRenameLocked(r, ino)
	}
	t.renames = kept
	delete(t.dirs, ino)
	t.gcLocked()
}

// applyRenameLocked writes a now-durable rename into the durable entries
// of its directories other than skip (whose current entries become
// durable as a whole anyway).
func (t *tracker) applyRenameLocked(r renameRec, skip uint64) {
	edit := func(dir uint64, f func(map[string]dirent)) {
		if dir == skip {
			return
		}
		// Both directories were snapshotted at the rename and a rename is
		// resolved by the first fsync of either, so a missing dirUndo
		// means that directory is already durable as it is.
		if d, ok := t.dirs[dir]; ok {
			f(d.durable)
		}
	}
	edit(r.from, func(m map[string]dirent) {
		if m[r.fromName].ino == r.moved.ino {
			delete(m, r.fromName)
		}
	})
	edit(r.to, func(m map[string]dirent) {
		if r.swapped != nil && m[r.toName].ino == r.swapped.ino {
			delete(m, r.toName)
		}
		m[r.toName] = r.moved
	})
	if r.swapped != nil {
		edit(r.from, func(m map[string]dirent) { m[r.fromName] = *r.swapped })
	}
}

func (t *tracker) stashPath(ino uint64) string {
	return filepath.Join(t.stash, strconv.FormatUint(ino, 10))
}

// stashFileLocked keeps a non-directory alive under the stash before one
// of its names is removed, so a cut can bring it back.
func (t *tracker) stashFileLocked(path string, ino uint64) error {
	if t.stashed[ino] {
		return nil
	}
	if err := os.Link(path, t.stashPath(ino)); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	t.stashed[ino] = true
	return nil
}

// stashDirLocked replaces rmdir: the (empty) directory moves to the stash
// and keeps its inode, mode and xattrs.
func (t *tracker) stashDirLocked(path string, ino uint64) error {
	if err := os.Rename(path, t.stashPath(ino)); err != nil {
		return err
	}
	t.stashed[ino] = true
	return nil
}

// gcLocked drops stashed inodes that no durable entry and no pending
// rename refers to: no cut can bring them back any more.
func (t *tracker) gcLocked() {
	if len(t.stashed) == 0 {
		return
	}
	// A stashed directory's own durable entries matter only if it is
	// itself still referenced, hence the fixpoint.
	ref := map[uint64]bool{}
	for _, r := range t.renames {
		ref[r.moved.ino] = true
		if r.swapped != nil {
			ref[r.swapped.ino] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for ino, d := range t.dirs {
			if t.stashed[ino] && !ref[ino] {
				continue
			}
			for _, e := range d.durable {
				if !ref[e.ino] {
					ref[e.ino], changed = true, true
				}
			}
		}
	}
	for ino := range t.stashed {
		if ref[ino] {
			continue
		}
		p := t.stashPath(ino)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			delete(t.stashed, ino)
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if os.RemoveAll(p) != nil {
				continue
			}
			delete(t.dirs, ino)
		} else {
			if unix.Unlink(p) != nil {
				continue
			}
			if st.Nlink <= 1 {
				t.mu.Lock()
				delete(t.files, ino)
				t.mu.Unlock()
			}
		}
		delete(t.stashed, ino)
	}
}

// listDir reads a directory's entries with their inodes.
func listDir(path string) (map[string]dirent, error) {
	des, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]dirent, len(des))
	for _, de := range des {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(path, de.Name()), &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, err
		}
		out[de.Name()] = dirent{ino: st.Ino, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR}
	}
	return out, nil
}

func lstatIno(path string) (uint64, bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0, false, err
	}
	return st.Ino, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
