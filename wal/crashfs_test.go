package wal

import (
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// memFS is an in-memory FS that knows what a power cut keeps: file bytes
// as of their last Sync, directory entries as of the last SyncDir, plus a
// random part of what happened since (unsynced writes land in any subset,
// possibly torn; unsynced directory operations land as a prefix, like a
// journal). One directory level is enough for the log.
type memFS struct {
	mu         sync.Mutex
	entries    map[string]*memInode // what the page cache shows
	durable    map[string]*memInode // as of the last SyncDir
	pendingDir []dirOp
}

type memInode struct {
	data    []byte
	durable []byte
	pending []memWrite // since the last Sync
}

type memWrite struct {
	off      int64
	b        []byte
	truncate bool
}

type dirOp struct {
	name, to string // to == "" for a removal
	ino      *memInode
}

func newMemFS() *memFS {
	return &memFS{entries: map[string]*memInode{}, durable: map[string]*memInode{}}
}

func (m *memFS) OpenFile(name string, flag int, _ os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.entries[name]
	switch {
	case ok && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		ino = &memInode{}
		m.entries[name] = ino
		m.pendingDir = append(m.pendingDir, dirOp{name: name, to: name, ino: ino})
	case flag&os.O_TRUNC != 0:
		ino.data = nil
		ino.pending = append(ino.pending, memWrite{off: 0, truncate: true})
	}
	return &memFile{fs: m, ino: ino}, nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[name]; !ok {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.entries, name)
	m.pendingDir = append(m.pendingDir, dirOp{name: name})
	return nil
}

func (m *memFS) Rename(oldpath, newpath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.entries[oldpath]
	if !ok {
		return &os.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(m.entries, oldpath)
	m.entries[newpath] = ino
	m.pendingDir = append(m.pendingDir, dirOp{name: oldpath, to: newpath, ino: ino})
	return nil
}

func (m *memFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for p := range m.entries {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (m *memFS) MkdirAll(string, os.FileMode) error { return nil }

func (m *memFS) SyncDir(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durable = maps.Clone(m.entries)
	m.pendingDir = nil
	return nil
}

// crash returns the filesystem a power cut at this instant could leave.
func (m *memFS) crash(rng *rand.Rand) *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries := maps.Clone(m.durable)
	for _, op := range m.pendingDir[:rng.IntN(len(m.pendingDir)+1)] {
		if op.to != op.name || op.to == "" {
			delete(entries, op.name)
		}
		if op.to != "" {
			entries[op.to] = op.ino
		}
	}
	out := newMemFS()
	copies := map[*memInode]*memInode{}
	for name, ino := range entries {
		c, ok := copies[ino]
		if !ok {
			data := slices.Clone(ino.durable)
			for _, w := range ino.pending {
				if rng.IntN(2) == 0 {
					continue // this write never reached the disk
				}
				if w.truncate {
					data = resize(data, w.off)
					continue
				}
				b := w.b
				if rng.IntN(3) == 0 {
					b = b[:rng.IntN(len(b)+1)] // torn
				}
				data = writeAt(data, b, w.off)
			}
			c = &memInode{data: data, durable: slices.Clone(data)}
			copies[ino] = c
		}
		out.entries[name] = c
		out.durable[name] = c
	}
	return out
}

func resize(b []byte, n int64) []byte {
	if int64(len(b)) >= n {
		return b[:n]
	}
	return append(b, make([]byte, n-int64(len(b)))...)
}

func writeAt(data, b []byte, off int64) []byte {
	if end := off + int64(len(b)); end > int64(len(data)) {
		data = resize(data, end)
	}
	copy(data[off:], b)
	return data
}

type memFile struct {
	fs  *memFS
	ino *memInode
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.ino.data = writeAt(f.ino.data, p, off)
	f.ino.pending = append(f.ino.pending, memWrite{off: off, b: slices.Clone(p)})
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.ino.durable = slices.Clone(f.ino.data)
	f.ino.pending = nil
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.ino.data = resize(f.ino.data, size)
	f.ino.pending = append(f.ino.pending, memWrite{off: size, truncate: true})
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Close() error { return nil }
