package lazyfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// entryKey names one directory entry for counting what a cut changed.
type entryKey struct {
	dir  uint64
	name string
}

// scan is the backing tree as the cut finds it.
type scan struct {
	loc     map[uint64]string // inode -> a path to it (stash paths included)
	entries map[entryKey]uint64
}

// target is the durable tree: for each directory inode reachable from the
// root through durable entries, its durable entries.
type target struct {
	dirs  map[uint64]map[string]dirent
	order []uint64 // breadth-first from the root
	files map[uint64]bool
}

// cutReport is what rollback undid, and anything odd it met on the way.
type cutReport struct {
	bytes, entries uint64
	anomalies      []string
}

// rollback turns the backing tree into its durable state. The FS must be
// unmounted (no request in flight). Steps: compute the durable tree; keep
// every inode it needs in the stash (files by hard link, directories by
// rename, deepest first); empty the root and the kept directories; roll
// file contents back; rebuild the tree top-down from the stash; empty the
// stash. Every step is a rename, link or unlink on one filesystem, so no
// content is copied except undo pages.
func (t *tracker) rollback(rootIno uint64) (cutReport, error) {
	t.ns.Lock()
	defer t.ns.Unlock()
	var rep cutReport
	sc, err := t.scan()
	if err != nil {
		return rep, err
	}
	tg := t.durableTree(rootIno, sc, &rep)

	// Keep every needed inode in the stash.
	for ino := range tg.files {
		p := t.stashPath(ino)
		if sc.loc[ino] == p {
			continue
		}
		if err := os.Link(sc.loc[ino], p); err != nil && !errors.Is(err, os.ErrExist) {
			return rep, fmt.Errorf("keep file %s: %w", sc.loc[ino], err)
		}
	}
	var moveDirs []uint64
	for _, d := range tg.order[1:] {
		if sc.loc[d] != t.stashPath(d) {
			moveDirs = append(moveDirs, d)
		}
	}
	sort.Slice(moveDirs, func(i, j int) bool {
		return strings.Count(sc.loc[moveDirs[i]], "/") > strings.Count(sc.loc[moveDirs[j]], "/")
	})
	for _, d := range moveDirs {
		if err := os.Rename(sc.loc[d], t.stashPath(d)); err != nil {
			return rep, fmt.Errorf("keep dir %s: %w", sc.loc[d], err)
		}
	}

	// Empty the root, the kept directories, and the stash of what is not needed.
	if err := removeEntries(t.backing, nil); err != nil {
		return rep, err
	}
	for _, d := range tg.order[1:] {
		if err := removeEntries(t.stashPath(d), nil); err != nil {
			return rep, err
		}
	}
	keep := func(name string) bool {
		ino, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return false
		}
		_, dir := tg.dirs[ino]
		return dir || tg.files[ino]
	}
	if err := removeEntries(t.stash, keep); err != nil {
		return rep, err
	}

	// Roll contents back. Files not in the durable tree are gone anyway.
	for ino := range tg.files {
		t.mu.Lock()
		u := t.files[ino]
		t.mu.Unlock()
		if u == nil {
			continue
		}
		n, err := u.rollback(t.stashPath(ino))
		rep.bytes += n
		if err != nil {
			return rep, fmt.Errorf("roll back content of inode %d: %w", ino, err)
		}
	}

	// Rebuild top-down.
	at := map[uint64]string{tg.order[0]: t.backing}
	for _, d := range tg.order {
		names := make([]string, 0, len(tg.dirs[d]))
		for name := range tg.dirs[d] {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			e := tg.dirs[d][name]
			dst := filepath.Join(at[d], name)
			var err error
			if e.dir {
				err = os.Rename(t.stashPath(e.ino), dst)
				at[e.ino] = dst
			} else {
				err = os.Link(t.stashPath(e.ino), dst)
			}
			if err != nil {
				return rep, fmt.Errorf("restore %s: %w", dst, err)
			}
		}
	}
	if err := removeEntries(t.stash, nil); err != nil {
		return rep, err
	}

	for k, ino := range sc.entries {
		if e, ok := tg.dirs[k.dir][k.name]; !ok || e.ino != ino {
			rep.entries++
		}
	}
	for d, ents := range tg.dirs {
		for name, e := range ents {
			if ino, ok := sc.entries[entryKey{d, name}]; !ok || ino != e.ino {
				rep.entries++
			}
		}
	}
	t.reset()
	return rep, nil
}

// scan walks the live tree and the stash.
func (t *tracker) scan() (*scan, error) {
	sc := &scan{loc: map[uint64]string{}, entries: map[entryKey]uint64{}}
	rootIno, _, err := lstatIno(t.backing)
	if err != nil {
		return nil, err
	}
	sc.loc[rootIno] = t.backing
	var walk func(dir string, dirIno uint64) error
	walk = func(dir string, dirIno uint64) error {
		ents, err := listDir(dir)
		if err != nil {
			return err
		}
		for name, e := range ents {
			p := filepath.Join(dir, name)
			sc.entries[entryKey{dirIno, name}] = e.ino
			if _, seen := sc.loc[e.ino]; !seen {
				sc.loc[e.ino] = p
			}
			if e.dir {
				if err := walk(p, e.ino); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(t.backing, rootIno); err != nil {
		return nil, err
	}
	stashed, err := listDir(t.stash)
	if err != nil {
		return nil, err
	}
	for name, e := range stashed {
		// Directories live in exactly one place; a stashed one is not in
		// the live tree. A stashed file may also be: either path will do.
		if _, seen := sc.loc[e.ino]; !seen || e.dir {
			sc.loc[e.ino] = filepath.Join(t.stash, name)
		}
	}
	return sc, nil
}

// durableTree follows durable entries from the root. A directory without
// a dirUndo is durable as it is, so its current entries are read.
func (t *tracker) durableTree(rootIno uint64, sc *scan, rep *cutReport) *target {
	tg := &target{dirs: map[uint64]map[string]dirent{}, files: map[uint64]bool{}}
	queue := []uint64{rootIno}
	tg.dirs[rootIno] = nil
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		tg.order = append(tg.order, d)
		var ents map[string]dirent
		if du, ok := t.dirs[d]; ok {
			ents = du.durable
		} else {
			var err error
			if ents, err = listDir(sc.loc[d]); err != nil {
				rep.anomalies = append(rep.anomalies, fmt.Sprintf("read dir inode %d: %v", d, err))
			}
		}
		kept := map[string]dirent{}
		for name, e := range ents {
			if _, ok := sc.loc[e.ino]; !ok {
				rep.anomalies = append(rep.anomalies, fmt.Sprintf("durable entry %q (inode %d) in dir inode %d: inode not found", name, e.ino, d))
				continue
			}
			if e.dir {
				if _, dup := tg.dirs[e.ino]; dup {
					rep.anomalies = append(rep.anomalies, fmt.Sprintf("directory inode %d durable in two places; kept one", e.ino))
					continue
				}
				tg.dirs[e.ino] = nil
				queue = append(queue, e.ino)
			} else {
				tg.files[e.ino] = true
			}
			kept[name] = e
		}
		tg.dirs[d] = kept
	}
	return tg
}

// removeEntries deletes everything in dir except names keep accepts.
func removeEntries(dir string, keep func(string) bool) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if keep != nil && keep(de.Name()) {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}
