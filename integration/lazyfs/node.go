package lazyfs

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is a loopback node whose every namespace change is recorded in the
// tracker first. Reads of the tree (lookup, getattr, readdir, readlink,
// xattrs, statfs) are go-fuse's LoopbackNode unchanged.
type node struct {
	fs.LoopbackNode
	t *tracker
}

func newRoot(t *tracker, backing string, dev uint64) *node {
	rd := &fs.LoopbackRoot{Path: backing, Dev: dev}
	rd.NewNode = func(rd *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: rd}, t: t}
	}
	root := &node{LoopbackNode: fs.LoopbackNode{RootData: rd}, t: t}
	rd.RootNode = root
	return root
}

// path is the backing path. An inode no longer in the tree (removed while
// open) gets go-fuse's ".go-fuse.N/deleted" placeholder, which does not
// exist, so path operations on it fail with ENOENT.
func (n *node) path() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func errno(err error) syscall.Errno { return fs.ToErrno(err) }

// changeDir snapshots this directory before a change and returns its path.
// Caller holds t.ns.
func (n *node) changeDir() (string, uint64, syscall.Errno) {
	dir := n.path()
	ino, isDir, err := lstatIno(dir)
	if err != nil {
		return "", 0, errno(err)
	}
	if !isDir {
		return "", 0, syscall.ENOTDIR
	}
	if err := n.t.beforeChangeLocked(ino, dir); err != nil {
		return "", 0, errno(err)
	}
	return dir, ino, 0
}

var (
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
)

// backingFlags adapts open flags for the backing file: always readable
// (saving old bytes before an overwrite needs pread), no O_APPEND (the
// kernel sends explicit offsets; pwrite on an O_APPEND fd would ignore
// them), no O_DIRECT (alignment rules of the backing are not ours), and no
// O_SYNC unless syncs are forwarded (lazyfs itself makes such writes
// durable).
func (t *tracker) backingFlags(flags uint32) int {
	f := int(flags) &^ (unix.O_APPEND | unix.O_DIRECT | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | fuse.FMODE_EXEC)
	if !t.syncBacking {
		f &^= unix.O_SYNC | unix.O_DSYNC
	}
	if f&unix.O_ACCMODE == unix.O_WRONLY {
		f = f&^unix.O_ACCMODE | unix.O_RDWR
	}
	return f | unix.O_CLOEXEC
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fd, err := unix.Open(n.path(), n.t.backingFlags(flags)|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, errno(err)
	}
	h, e := n.t.newHandle(fd, flags)
	if e != 0 {
		return nil, 0, e
	}
	if flags&unix.O_TRUNC != 0 { // only with FUSE_ATOMIC_O_TRUNC, which we do not ask for
		if e := h.truncate(0); e != 0 {
			h.Release(ctx)
			return nil, 0, e
		}
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	dir, _, e := n.changeDir()
	if e != 0 {
		return nil, nil, 0, e
	}
	p := filepath.Join(dir, name)
	bf := t.backingFlags(flags)
	created := true
	fd, err := unix.Open(p, bf|unix.O_CREAT|unix.O_EXCL, mode&07777)
	if errors.Is(err, unix.EEXIST) && flags&unix.O_EXCL == 0 {
		// The name appeared after the kernel's negative lookup.
		created = false
		fd, err = unix.Open(p, bf|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	if created {
		_ = unix.Fchmod(fd, mode&07777) // our umask is not the caller's
		if c, ok := fuse.FromContext(ctx); ok {
			_ = unix.Fchown(fd, int(c.Uid), int(c.Gid))
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, 0, errno(err)
	}
	if created {
		t.newFileLocked(st.Ino)
	}
	h, e := t.newHandle(fd, flags)
	if e != 0 {
		return nil, nil, 0, e
	}
	if !created && flags&unix.O_TRUNC != 0 {
		if e := h.truncate(0); e != 0 {
			h.Release(ctx)
			return nil, nil, 0, e
		}
	}
	ch, e := n.LoopbackNode.Lookup(ctx, name, out)
	if e != 0 {
		h.Release(ctx)
		return nil, nil, 0, e
	}
	return ch, h, fuse.FOPEN_DIRECT_IO, 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	sz, ok := in.GetSize()
	if !ok {
		return n.LoopbackNode.Setattr(ctx, f, in, out)
	}
	h, ok := f.(*handle)
	if !ok {
		// truncate(2) by name: borrow a descriptor for the undo log.
		fd, err := unix.Open(n.path(), unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return errno(err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return errno(err)
		}
		h = &handle{t: n.t, fd: fd, ino: st.Ino}
	}
	u := n.t.file(h.ino)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.prepareLocked(h.fd, int64(sz), toEnd); err != nil {
		return errno(err)
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// Fsync receives fsync/fdatasync of files and, when the directory handle
// does not take it first, of directories.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Fsync(ctx, flags)
	}
	if n.IsDir() {
		return n.fsyncDir()
	}
	fd, err := unix.Open(n.path(), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return errno(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return errno(err)
	}
	return (&handle{t: n.t, fd: fd, ino: st.Ino}).Fsync(ctx, flags)
}

func (n *node) fsyncDir() syscall.Errno {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	dir := n.path()
	ino, _, err := lstatIno(dir)
	switch {
	case err == nil:
		if t.syncBacking {
			if err := fsyncPath(dir); err != nil {
				return errno(err)
			}
		}
	case errors.Is(err, unix.ENOENT) && !n.IsRoot():
		// Removed while open (it is in the stash): its entries, if it ever
		// comes back, are its current ones. go-fuse numbers loopback
		// nodes by backing inode when, as here, there is one device.
		ino = n.StableAttr().Ino
	default:
		return errno(err)
	}
	t.dirSyncedLocked(ino)
	t.dirSyncs.Add(1)
	return 0
}

func fsyncPath(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, e := fs.NewLoopbackDirStream(n.path())
	if e != 0 {
		return nil, 0, e
	}
	return newDirHandle(n, ds), 0, 0
}

// CopyFileRange is refused so that the kernel falls back to reads and
// writes through this FS, which the undo log sees.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.EOPNOTSUPP
}

// Tmpfile is refused: an O_TMPFILE inode has no name to roll back, and
// linking it in later arrives without a path the loopback could use.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}
