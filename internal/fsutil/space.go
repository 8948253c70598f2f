package fsutil

import "golang.org/x/sys/unix"

// Space is the room on the filesystem holding a directory.
type Space struct {
	Free int64 // bytes an unprivileged writer can still use (f_bavail): what weir has left
	Used int64 // bytes in use, by anything (f_blocks - f_bfree)
	Size int64 // the filesystem's size (f_blocks)
}

// SpaceOf reads the room on dir's filesystem (one statfs).
func SpaceOf(dir string) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Space{}, err
	}
	// Block counts are in fragment units; Linux sets f_frsize (equal to
	// f_bsize on the usual filesystems) since 2.6.
	unit := int64(st.Frsize)
	if unit <= 0 {
		unit = int64(st.Bsize)
	}
	return Space{
		Free: int64(st.Bavail) * unit,
		Used: int64(st.Blocks-st.Bfree) * unit,
		Size: int64(st.Blocks) * unit,
	}, nil
}
