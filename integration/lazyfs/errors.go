package lazyfs

import "errors"

// Sentinel errors, matched with errors.Is.
var (
	// ErrNoFUSE: /dev/fuse is missing or unusable and could not be created.
	ErrNoFUSE = errors.New("lazyfs: FUSE unavailable")
	// ErrNotMounted: the FS was unmounted (or never mounted).
	ErrNotMounted = errors.New("lazyfs: not mounted")
	// ErrBusy: the mount is still in use (an open file, a working
	// directory), so it cannot be cut. Kill every process using it first;
	// the FS is left mounted and unchanged.
	ErrBusy = errors.New("lazyfs: mount busy")
	// ErrCrossDevice: the stash directory is not on the backing
	// directory's filesystem, so removed files cannot be kept by hard link.
	ErrCrossDevice = errors.New("lazyfs: stash and backing on different filesystems")
	// ErrRollback: rebuilding the durable state after a power cut failed
	// part-way; the backing directory may hold a mix of both states.
	ErrRollback = errors.New("lazyfs: rollback failed")
)
