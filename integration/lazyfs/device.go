package lazyfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fuseDev is the character device the kernel's FUSE module serves.
const (
	fuseDev   = "/dev/fuse"
	fuseMajor = 10
	fuseMinor = 229
)

// EnsureFUSE makes /dev/fuse usable: it loads the fuse module and creates
// the device node if either is missing (both need root), then opens the
// device to prove it works. The error wraps ErrNoFUSE and says what failed.
func EnsureFUSE() error {
	var notes []string
	if !fuseInKernel() {
		out, err := exec.Command("modprobe", "fuse").CombinedOutput()
		if err != nil {
			notes = append(notes, fmt.Sprintf("modprobe fuse: %v: %s", err, strings.TrimSpace(string(out))))
		}
	}
	var st unix.Stat_t
	err := unix.Stat(fuseDev, &st)
	if errors.Is(err, unix.ENOENT) {
		err = unix.Mknod(fuseDev, unix.S_IFCHR|0o666, int(unix.Mkdev(fuseMajor, fuseMinor)))
		if err != nil {
			notes = append(notes, fmt.Sprintf("mknod %s c %d %d: %v", fuseDev, fuseMajor, fuseMinor, err))
		}
		err = unix.Stat(fuseDev, &st)
	}
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFCHR {
		err = fmt.Errorf("%s is not a character device", fuseDev)
	}
	if err == nil {
		var fd int
		if fd, err = unix.Open(fuseDev, unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		notes = append(notes, err.Error())
		if os.Geteuid() != 0 {
			notes = append(notes, "not running as root")
		}
		return fmt.Errorf("%w: %s", ErrNoFUSE, strings.Join(notes, "; "))
	}
	return nil
}

func fuseInKernel() bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 && fields[len(fields)-1] == "fuse" {
			return true
		}
	}
	return false
}

// fsName is the mount's source as /proc/self/mountinfo shows it. It
// names the serving process so that SweepStale can tell a dead mount from
// a live one without touching it (a stat on a hung mount hangs too).
func fsName(backing string) string {
	return fmt.Sprintf("lazyfs@%d:%s", os.Getpid(), backing)
}

// ownerPID parses fsName's output; ok is false for other sources.
func ownerPID(source string) (int, bool) {
	rest, ok := strings.CutPrefix(source, "lazyfs@")
	if !ok {
		return 0, false
	}
	pid, _, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(pid)
	return n, err == nil && n > 0
}

// SweepStale removes lazyfs mounts under dir whose serving process is gone
// or a zombie. A test binary killed mid-run leaves one behind: accesses
// fail with ENOTCONN, or hang forever if a thread of the dying server is
// stuck in a FUSE request of its own. SweepStale aborts such a mount's
// FUSE connection and detaches it, without ever accessing the mount.
// Mounts of live processes are left alone. It returns the mountpoints it
// removed.
func SweepStale(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var swept []string
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 35 0:39 / /mnt rw,relatime - fuse.lazyfs lazyfs@123:/src rw,..."
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+2 >= len(fields) || fields[sep+1] != "fuse.lazyfs" {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		pid, ok := ownerPID(unescapeMountinfo(fields[sep+2]))
		if !ok || !within(mp, dir) || !processGone(pid) {
			continue
		}
		if id, ok := connFromMountinfo(fields[2]); ok {
			// Fails harmlessly if the kernel already dropped it.
			_ = abortConn(id)
		}
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("lazyfs: detach %s: %w", mp, err))
			continue
		}
		swept = append(swept, mp)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return swept, errors.Join(errs...)
}

// processGone: no such process, or a zombie (which never serves again;
// an init that does not reap can keep one for ever).
func processGone(pid int) bool {
	if errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// "pid (comm) S ...": comm may hold spaces and parens; the state
	// follows the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// connFromMountinfo turns mountinfo's "major:minor" into the fusectl
// connection name (the kernel dev_t, major<<20 | minor).
func connFromMountinfo(devField string) (string, bool) {
	maj, min, ok := strings.Cut(devField, ":")
	if !ok {
		return "", false
	}
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return strconv.FormatUint(a<<20|b, 10), true
}

// unescapeMountinfo undoes the octal escapes (\040 for space...) of
// /proc/self/mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + c - '0'
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
