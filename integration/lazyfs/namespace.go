package lazyfs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Namespace changes: each takes the tracker's ns lock, snapshots the
// directories it changes, keeps whatever it removes in the stash, and only
// then changes the backing tree.

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	dir, _, e := n.changeDir()
	if e != 0 {
		return nil, e
	}
	ch, e := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if e == 0 {
		_ = unix.Chmod(filepath.Join(dir, name), mode&07777)
		t.newDirLocked(out.Attr.Ino)
	}
	return ch, e
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	if _, _, e := n.changeDir(); e != 0 {
		return nil, e
	}
	ch, e := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if e == 0 {
		if mode&unix.S_IFMT == unix.S_IFREG {
			t.newFileLocked(out.Attr.Ino)
		} else {
			t.forgetLocked(out.Attr.Ino)
		}
	}
	return ch, e
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	if _, _, e := n.changeDir(); e != 0 {
		return nil, e
	}
	ch, e := n.LoopbackNode.Symlink(ctx, target, name, out)
	if e == 0 {
		t.forgetLocked(out.Attr.Ino) // a symlink's target is its name's business, not content
	}
	return ch, e
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	if _, _, e := n.changeDir(); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	dir, _, e := n.changeDir()
	if e != 0 {
		return e
	}
	p := filepath.Join(dir, name)
	ino, isDir, err := lstatIno(p)
	if err != nil {
		return errno(err)
	}
	if isDir {
		return syscall.EISDIR
	}
	if err := t.stashFileLocked(p, ino); err != nil {
		return errno(err)
	}
	return errno(unix.Unlink(p))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	dir, _, e := n.changeDir()
	if e != 0 {
		return e
	}
	p := filepath.Join(dir, name)
	ino, isDir, err := lstatIno(p)
	if err != nil {
		return errno(err)
	}
	if !isDir {
		return syscall.ENOTDIR
	}
	if e := emptyDir(p); e != 0 {
		return e
	}
	return errno(t.stashDirLocked(p, ino))
}

func emptyDir(p string) syscall.Errno {
	d, err := os.Open(p)
	if err != nil {
		return errno(err)
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err == nil {
		return syscall.ENOTEMPTY
	} else if err != io.EOF {
		return errno(err)
	}
	return 0
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&^(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE) != 0 {
		return syscall.EINVAL // RENAME_WHITEOUT is for overlayfs
	}
	t := n.t
	t.ns.Lock()
	defer t.ns.Unlock()
	fromDir, fromIno, e := n.changeDir()
	if e != 0 {
		return e
	}
	toDir, toIno, e := np.changeDir()
	if e != 0 {
		return e
	}
	src, dst := filepath.Join(fromDir, name), filepath.Join(toDir, newName)
	srcIno, srcDir, err := lstatIno(src)
	if err != nil {
		return errno(err)
	}
	rec := renameRec{from: fromIno, to: toIno, fromName: name, toName: newName, moved: dirent{srcIno, srcDir}}
	dstIno, dstDir, err := lstatIno(dst)
	switch {
	case errors.Is(err, unix.ENOENT):
		if flags&unix.RENAME_EXCHANGE != 0 {
			return syscall.ENOENT
		}
	case err != nil:
		return errno(err)
	case dstIno == srcIno:
		// Two names of one inode: POSIX makes this a no-op.
		return errno(unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, uint(flags)))
	case flags&unix.RENAME_EXCHANGE != 0:
		rec.swapped = &dirent{dstIno, dstDir}
	case flags&unix.RENAME_NOREPLACE != 0:
		return syscall.EEXIST
	default:
		// The replaced inode must survive in the stash in case the rename
		// is undone. Check what rename(2) would refuse before moving a
		// directory out of the way, so a refused rename changes nothing.
		switch {
		case srcDir && !dstDir:
			return syscall.ENOTDIR
		case !srcDir && dstDir:
			return syscall.EISDIR
		case dstDir:
			if e := emptyDir(dst); e != 0 {
				return e
			}
			if err := t.stashDirLocked(dst, dstIno); err != nil {
				return errno(err)
			}
			if err := unix.Rename(src, dst); err != nil {
				_ = os.Rename(t.stashPath(dstIno), dst)
				delete(t.stashed, dstIno)
				return errno(err)
			}
			t.renames = append(t.renames, rec)
			return 0
		default:
			if err := t.stashFileLocked(dst, dstIno); err != nil {
				return errno(err)
			}
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, uint(flags)); err != nil {
		return errno(err)
	}
	t.renames = append(t.renames, rec)
	return 0
}
