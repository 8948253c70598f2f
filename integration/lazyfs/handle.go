package lazyfs

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// handle is an open regular file. Changes to content or size go through
// the undo log first; everything else is go-fuse's LoopbackFile, held as a
// field rather than embedded so that this type does not advertise
// FilePassthroughFder: kernel passthrough would send reads and writes
// straight to the backing file, around the undo log.
type handle struct {
	t   *tracker
	lf  *fs.LoopbackFile // owns fd; nil for a borrowed descriptor
	fd  int
	ino uint64
	// syncWrites: opened O_SYNC/O_DSYNC, so each write is durable when
	// it returns.
	syncWrites bool
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileWritever  = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
	_ fs.FileStatxer   = (*handle)(nil)
	_ fs.FileSetattrer = (*handle)(nil)
	_ fs.FileAllocater = (*handle)(nil)
	_ fs.FileLseeker   = (*handle)(nil)
)

func (t *tracker) newHandle(fd int, flags uint32) (*handle, syscall.Errno) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, errno(err)
	}
	return &handle{
		t:          t,
		lf:         fs.NewLoopbackFileFromOS(os.NewFile(uintptr(fd), "")),
		fd:         fd,
		ino:        st.Ino,
		syncWrites: flags&unix.O_DSYNC != 0, // O_SYNC includes the O_DSYNC bit
	}, 0
}

// change runs fn (which changes [from, to) of the file) after saving the
// durable bytes it overwrites.
func (h *handle) change(from, to int64, fn func() syscall.Errno) syscall.Errno {
	u := h.t.file(h.ino)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.prepareLocked(h.fd, from, to); err != nil {
		return errno(err)
	}
	e := fn()
	if e == 0 && h.syncWrites {
		u.syncedLocked()
	}
	return e
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return h.Writev(ctx, [][]byte{data}, off)
}

func (h *handle) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	var total int64
	for _, b := range data {
		total += int64(len(b))
	}
	var n int
	e := h.change(off, off+total, func() syscall.Errno {
		var err error
		n, err = unix.Pwritev(h.fd, data, off)
		return errno(err)
	})
	h.t.writes.Add(1)
	h.t.bytesWritten.Add(uint64(max(n, 0)))
	return uint32(max(n, 0)), e
}

func (h *handle) truncate(size int64) syscall.Errno {
	return h.change(size, toEnd, func() syscall.Errno {
		return errno(unix.Ftruncate(h.fd, size))
	})
}

// Allocate passes fallocate through. Plain allocation (mode 0 or
// KEEP_SIZE) keeps existing bytes, and any growth is cut back to the
// durable size; punching or zeroing a range changes that range; collapsing
// or inserting shifts everything after off.
func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	from, to := int64(off), int64(off+size)
	switch mode &^ unix.FALLOC_FL_KEEP_SIZE {
	case 0, unix.FALLOC_FL_UNSHARE_RANGE:
		from, to = 0, 0
	case unix.FALLOC_FL_PUNCH_HOLE, unix.FALLOC_FL_ZERO_RANGE:
	default:
		to = toEnd
	}
	return h.change(from, to, func() syscall.Errno {
		return errno(unix.Fallocate(h.fd, mode, int64(off), int64(size)))
	})
}

// Fsync makes the file's content and size durable (fsync and fdatasync
// alike: fdatasync also flushes a size change).
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	u := h.t.file(h.ino)
	u.mu.Lock()
	defer u.mu.Unlock()
	if h.t.syncBacking {
		var err error
		if flags&fsyncFdatasync != 0 {
			err = unix.Fdatasync(h.fd)
		} else {
			err = unix.Fsync(h.fd)
		}
		if err != nil {
			// Not durable: whatever the backing kept, a real disk after a
			// failed fsync guarantees nothing.
			return errno(err)
		}
	}
	u.syncedLocked()
	h.t.syncs.Add(1)
	if flags&fsyncFdatasync != 0 {
		h.t.dataSyncs.Add(1)
	}
	return 0
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.lf.Read(ctx, dest, off)
}

func (h *handle) Flush(ctx context.Context) syscall.Errno { return h.lf.Flush(ctx) }

func (h *handle) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Getattr(ctx, out)
}

func (h *handle) Statx(ctx context.Context, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	return h.lf.Statx(ctx, flags, mask, out)
}

// Setattr is reached through node.Setattr, which has already saved what a
// size change cuts.
func (h *handle) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Setattr(ctx, in, out)
}

func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

// dirHandle is an open directory: go-fuse's loopback directory stream for
// listing, but fsync goes to the tracker. go-fuse hands FSYNCDIR to the
// handle before the node, and the loopback stream would just fsync the
// backing directory.
type dirHandle struct {
	fs.FileReaddirenter
	fs.FileSeekdirer
	fs.FileReleasedirer
	n *node
}

var _ fs.FileFsyncdirer = (*dirHandle)(nil)

type loopbackDirStream interface {
	fs.FileReaddirenter
	fs.FileSeekdirer
	fs.FileReleasedirer
}

func newDirHandle(n *node, ds fs.DirStream) fs.FileHandle {
	s, ok := ds.(loopbackDirStream)
	if !ok {
		// A go-fuse without these methods would break listing; fail loudly
		// in tests rather than list nothing.
		panic("lazyfs: go-fuse loopback dir stream lacks Readdirent/Seekdir/Releasedir")
	}
	return &dirHandle{FileReaddirenter: s, FileSeekdirer: s, FileReleasedirer: s, n: n}
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.fsyncDir()
}

// fsyncFdatasync is FUSE_FSYNC_FDATASYNC from linux/fuse.h: the FSYNC
// request came from fdatasync(2).
const fsyncFdatasync = 1 << 0
