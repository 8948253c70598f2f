package lazyfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

const fusectl = "/sys/fs/fuse/connections"

// connID is the name of the mount's directory under fusectl: the kernel's
// dev_t of the superblock (major<<20 | minor), not the userspace encoding.
func connID(mountpoint string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return "", err
	}
	return strconv.FormatUint(uint64(unix.Major(st.Dev))<<20|uint64(unix.Minor(st.Dev)), 10), nil
}

// Abort tears the mount down without waiting for anything: it aborts the
// kernel's FUSE connection (every pending and future request fails with
// ENOTCONN) and detaches the mountpoint. It is the way out when the FS
// hangs: a process blocked on a FUSE request cannot even be killed until
// the connection goes. No rollback happens; the backing keeps its current
// state. Unmount after Abort is a no-op.
func (f *FS) Abort() error {
	var errs []error
	if f.conn != "" {
		if err := abortConn(f.conn); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unix.Unmount(f.mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("lazyfs: detach %s: %w", f.mountpoint, err))
	}
	// Not under f.mu: PowerCut or Unmount may be the call that hangs.
	// Their servers exit once the connection is gone.
	return errors.Join(errs...)
}

func abortConn(id string) error {
	p := filepath.Join(fusectl, id, "abort")
	if _, err := os.Stat(filepath.Join(fusectl, id)); errors.Is(err, os.ErrNotExist) {
		// fusectl may simply not be mounted yet.
		if err := unix.Mount("fusectl", fusectl, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("lazyfs: mount fusectl: %w", err)
		}
	}
	if err := os.WriteFile(p, []byte("1"), 0); err != nil {
		return fmt.Errorf("lazyfs: abort connection %s: %w", id, err)
	}
	return nil
}
