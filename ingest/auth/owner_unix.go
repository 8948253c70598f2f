//go:build unix

package auth

import (
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives the new file the old one's owner, so that root running
// `weir passwd` does not leave a file the gateway's user cannot read. It
// fails harmlessly when not permitted (then the caller owned it anyway).
func keepOwner(f *os.File, st fs.FileInfo) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(s.Uid), int(s.Gid))
	}
}
