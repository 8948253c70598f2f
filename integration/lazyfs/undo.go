package lazyfs

import (
	"io"
	"math"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// pageSize is the granularity of the undo log: the first change to any
// byte of a page since the last sync saves the whole page's durable bytes.
const pageSize = 4096

// toEnd as the end of a range means "up to the durable size".
const toEnd = math.MaxInt64

// fileUndo is the durability state of one backing inode's content. While
// tracking is false the current content is durable. Once a change arrives
// it records the size at the last sync and, for every page below that size
// changed since, the page's bytes at the last sync. Rolling back = truncate
// to durable, then write the saved pages back.
type fileUndo struct {
	// mu is held across "save old bytes, then change the file" so that no
	// page is changed before its durable bytes are saved.
	mu       sync.Mutex
	tracking bool
	durable  int64
	pages    map[int64][]byte
}

// fresh is the state of a file created since the last cut: nothing of it
// is durable, not even its size.
func fresh() *fileUndo {
	return &fileUndo{tracking: true, pages: map[int64][]byte{}}
}

// prepareLocked saves the durable bytes of [from, to) that are about to
// change, reading them from fd (which must be readable). The caller holds
// mu and changes the file only if this succeeds.
func (u *fileUndo) prepareLocked(fd int, from, to int64) error {
	if !u.tracking {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		u.tracking, u.durable, u.pages = true, st.Size, map[int64][]byte{}
	}
	if to > u.durable {
		to = u.durable
	}
	if from < 0 {
		from = 0
	}
	if from >= to {
		return nil
	}
	for p := from / pageSize; p*pageSize < to; p++ {
		if _, ok := u.pages[p]; ok {
			continue
		}
		n := min(int64(pageSize), u.durable-p*pageSize)
		buf := make([]byte, n)
		if err := preadFull(fd, buf, p*pageSize); err != nil {
			return err
		}
		u.pages[p] = buf
	}
	return nil
}

// syncedLocked makes the current content durable.
func (u *fileUndo) syncedLocked() {
	u.tracking, u.durable, u.pages = false, 0, nil
}

// rollback restores path to the durable content and reports how many
// bytes that undid.
func (u *fileUndo) rollback(path string) (uint64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.tracking {
		return 0, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, nil
	}
	var undone uint64
	if st.Size() > u.durable {
		undone += uint64(st.Size() - u.durable)
	}
	if err := f.Truncate(u.durable); err != nil {
		return undone, err
	}
	for p, buf := range u.pages {
		if _, err := f.WriteAt(buf, p*pageSize); err != nil {
			return undone, err
		}
		undone += uint64(len(buf))
	}
	u.syncedLocked()
	return undone, nil
}

func preadFull(fd int, buf []byte, off int64) error {
	for len(buf) > 0 {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			// Shorter than the durable size although every shrink saves
			// the pages it cuts: the backing was changed behind our back.
			return io.ErrUnexpectedEOF
		}
		buf, off = buf[n:], off+int64(n)
	}
	return nil
}
