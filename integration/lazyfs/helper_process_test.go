package lazyfs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as a separate client process. Some
// accesses must not come from the process serving the mount: a goroutine
// faulting on a mapped FUSE page is stuck in the kernel where the Go
// runtime cannot preempt it, so the next stop-the-world waits for it
// while it waits for the FUSE server, which cannot run. Deadlock.
const helperEnv = "LAZYFS_TEST_HELPER"

// runHelper runs one of:
//   - "mmap PATH OFFSET DATA MSYNC(0|1)": writes DATA at OFFSET of PATH
//     through a shared mapping of its first OFFSET+len(DATA) bytes.
//   - "mount BACKING MOUNTPOINT - -": mounts, prints "mounted" and waits
//     to be killed, leaving its mount behind.
func runHelper() int {
	args := os.Args[len(os.Args)-5:]
	if os.Getenv(helperEnv) != args[0] {
		fmt.Fprintln(os.Stderr, "helper mismatch", os.Getenv(helperEnv), args)
		return 2
	}
	if args[0] == "mount" {
		if _, err := Mount(args[1], args[2], Options{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("mounted")
		time.Sleep(time.Minute)
		return 1
	}
	if args[0] != "mmap" {
		fmt.Fprintln(os.Stderr, "unknown helper", args)
		return 2
	}
	off, _ := strconv.Atoi(args[2])
	data, msync := args[3], args[4] == "1"
	if err := mmapWrite(args[1], off, data, msync); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func mmapWrite(path string, off int, data string, msync bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, off+len(data), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap MAP_SHARED: %w", err)
	}
	copy(m[off:], data)
	if msync {
		if err := unix.Msync(m, unix.MS_SYNC); err != nil {
			return fmt.Errorf("msync: %w", err)
		}
	}
	return unix.Munmap(m)
}

// helper runs the test binary as a client process and fails the test if
// it fails or takes more than 30s.
func helper(t *testing.T, args ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+args[0])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper %v: %v\n%s", args, err, out)
	}
}
