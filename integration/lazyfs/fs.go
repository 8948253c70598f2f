package lazyfs

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// FS is a mounted lazyfs. Its methods are safe for concurrent use.
type FS struct {
	backing, mountpoint string
	opts                Options
	log                 *log.Logger
	dev, rootIno        uint64
	ownStash            bool
	t                   *tracker

	mu     sync.Mutex // lifecycle: server swaps in PowerCut and Unmount
	server *fuse.Server
	conn   string // fusectl connection of the current mount, for Abort
}

// Mount serves backing at mountpoint (created if missing) and starts
// tracking durability: everything already in backing counts as durable.
// It must run as root. Nothing else may change backing while it is
// mounted.
func Mount(backing, mountpoint string, opts Options) (*FS, error) {
	if err := EnsureFUSE(); err != nil {
		return nil, err
	}
	var err error
	if backing, err = filepath.Abs(backing); err != nil {
		return nil, err
	}
	if mountpoint, err = filepath.Abs(mountpoint); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("lazyfs: backing: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("lazyfs: backing %s: %w", backing, syscall.ENOTDIR)
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return nil, fmt.Errorf("lazyfs: mountpoint: %w", err)
	}
	f := &FS{backing: backing, mountpoint: mountpoint, opts: opts, dev: uint64(st.Dev), rootIno: st.Ino}
	f.log = opts.Logger
	if f.log == nil {
		f.log = log.New(io.Discard, "", 0)
	}
	stash := opts.StashDir
	if stash == "" {
		if stash, err = os.MkdirTemp(filepath.Dir(backing), ".lazyfs-stash-"); err != nil {
			return nil, fmt.Errorf("lazyfs: stash: %w", err)
		}
		f.ownStash = true
	} else if err := os.MkdirAll(stash, 0o700); err != nil {
		return nil, fmt.Errorf("lazyfs: stash: %w", err)
	}
	if stash, err = filepath.Abs(stash); err != nil {
		return nil, err
	}
	fail := func(err error) (*FS, error) {
		if f.ownStash {
			os.RemoveAll(stash)
		}
		return nil, err
	}
	var sst unix.Stat_t
	if err := unix.Stat(stash, &sst); err != nil {
		return fail(fmt.Errorf("lazyfs: stash: %w", err))
	}
	if sst.Dev != st.Dev {
		return fail(fmt.Errorf("%w: stash %s, backing %s", ErrCrossDevice, stash, backing))
	}
	if within(stash, backing) || within(mountpoint, backing) || within(backing, mountpoint) {
		return fail(fmt.Errorf("lazyfs: backing %s, mountpoint %s and stash %s must not nest", backing, mountpoint, stash))
	}
	if err := removeEntries(stash, nil); err != nil {
		return fail(fmt.Errorf("lazyfs: stash: %w", err))
	}
	f.t = newTracker(backing, stash, opts.SyncBacking)
	if f.server, err = f.mount(); err != nil {
		return fail(err)
	}
	return f, nil
}

func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// mount starts a fresh go-fuse server: no inode, dentry or page cache
// survives from an earlier one.
func (f *FS) mount() (*fuse.Server, error) {
	zero := time.Duration(0)
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount:       true,
			DirectMountStrict: true, // never fall back to fusermount
			FsName:            fsName(f.backing),
			Name:              "lazyfs",
			Debug:             f.opts.Debug,
			Logger:            f.log,
			MaxWrite:          1 << 20,
			// Shared writable mmap of FOPEN_DIRECT_IO files fails with
			// ENODEV without this; with it, dirty mapped pages reach
			// Write on writeback, msync or munmap like any write.
			ExtraCapabilities:    fuse.CAP_DIRECT_IO_ALLOW_MMAP,
			DisabledCapabilities: fuse.CAP_PASSTHROUGH | fuse.CAP_WRITEBACK_CACHE | fuse.CAP_ATOMIC_O_TRUNC,
		},
		// Every lookup and getattr reaches us, so after a cut nothing
		// stale is served even to a process that kept a path.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		Logger:          f.log,
	}
	srv, err := fs.Mount(f.mountpoint, newRoot(f.t, f.backing, f.dev), opts)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s on %s: %w", f.backing, f.mountpoint, err)
	}
	// Best effort: without it Abort can still detach.
	f.conn, _ = connID(f.mountpoint)
	return srv, nil
}

// Mountpoint is where the FS is mounted.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Backing is the directory the FS stores into.
func (f *FS) Backing() string { return f.backing }

// PowerCut undoes everything not durable, as a machine losing power would:
// file contents and sizes go back to their last fsync/fdatasync, directory
// entries to their directory's last fsync. Kill every process using the
// mount first (kill -9 and wait): PowerCut unmounts, which fails with
// ErrBusy while a file or directory on it is open, leaving everything as
// it was. It then rolls the backing directory back and mounts again, so no
// kernel cache of the old mount survives.
func (f *FS) PowerCut() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.server == nil {
		return ErrNotMounted
	}
	if err := f.server.Unmount(); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%w: %s: %v", ErrBusy, f.mountpoint, err)
		}
		return fmt.Errorf("lazyfs: unmount %s: %w", f.mountpoint, err)
	}
	f.server.Wait()
	f.server = nil
	rep, rerr := f.t.rollback(f.rootIno)
	for _, a := range rep.anomalies {
		f.log.Printf("lazyfs: power cut: %s", a)
	}
	f.t.bytesUndone.Add(rep.bytes)
	f.t.entriesUndone.Add(rep.entries)
	if rerr == nil {
		f.t.cuts.Add(1)
		f.log.Printf("lazyfs: power cut on %s: undid %d bytes, %d entries", f.mountpoint, rep.bytes, rep.entries)
	} else {
		rerr = fmt.Errorf("%w: %w", ErrRollback, rerr)
		// Keep going from whatever the backing holds now, so the caller
		// can still look and unmount.
		f.t.reset()
	}
	srv, err := f.mount()
	if err != nil {
		return errors.Join(rerr, err)
	}
	f.server = srv
	return rerr
}

// Unmount stops serving. The backing directory keeps its current state,
// as after a clean shutdown (nothing is rolled back). Unmounting twice is
// not an error.
func (f *FS) Unmount() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.server == nil {
		return nil
	}
	if err := f.server.Unmount(); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%w: %s: %v", ErrBusy, f.mountpoint, err)
		}
		return fmt.Errorf("lazyfs: unmount %s: %w", f.mountpoint, err)
	}
	f.server.Wait()
	f.server = nil
	// Removed inodes kept for a cut that will not come.
	if f.ownStash {
		return os.RemoveAll(f.t.stash)
	}
	return removeEntries(f.t.stash, nil)
}

// Stats reports counters since Mount.
func (f *FS) Stats() Stats {
	t := f.t
	return Stats{
		Writes:        t.writes.Load(),
		BytesWritten:  t.bytesWritten.Load(),
		Syncs:         t.syncs.Load(),
		DataSyncs:     t.dataSyncs.Load(),
		DirSyncs:      t.dirSyncs.Load(),
		Cuts:          t.cuts.Load(),
		BytesUndone:   t.bytesUndone.Load(),
		EntriesUndone: t.entriesUndone.Load(),
	}
}
