package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/weir-gateway/weir/wal"
)

const verifySynopsis = `weir verify --data-dir DIR

Checks every shard log of a stopped gateway's data directory: each record
against its checksum, each sealed segment against its footer (record count,
index, checksum of the whole segment), and that no segment is missing.
Nothing is changed. Prints FILE:OFFSET: what for each damaged place and
exits 1 if there is any; a torn tail of a shard's newest segment (a write
cut by a crash, which the next start cuts off and copies aside) is printed
as a note and is not damage. Exits 0 when everything is intact.`

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("verify", verifySynopsis, stderr)
	dir := fs.String("data-dir", "", "data directory of a stopped gateway")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	damaged, err := verifyDataDir(*dir, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "weir verify:", err)
		return 2
	}
	if damaged {
		fmt.Fprintln(stderr, "weir verify: damage found; see `weir help` and wal/FORMAT.md (Recovery) for what to do")
		return 1
	}
	return 0
}

// verifyDataDir verifies each shard directory (one holding *.seg files)
// under dir/streams, holding the data directory's lock so that no gateway
// starts (and recycles a segment) meanwhile.
func verifyDataDir(dir string, stdout, stderr io.Writer) (damaged bool, err error) {
	streams := filepath.Join(dir, "streams")
	if _, err := os.Stat(streams); err != nil {
		return false, fmt.Errorf("%s is not a weir data directory: %w", dir, err)
	}
	lock, err := os.Open(filepath.Join(dir, "LOCK"))
	if err == nil {
		defer lock.Close()
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
			return false, fmt.Errorf("a gateway is running on %s (its LOCK is held): stop it first: %w", dir, err)
		}
	}
	var shardDirs []string
	err = filepath.WalkDir(streams, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Ext(p) == ".seg" && !slices.Contains(shardDirs, filepath.Dir(p)) {
			shardDirs = append(shardDirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, sd := range shardDirs {
		rel, _ := filepath.Rel(streams, sd)
		rep, err := wal.VerifyDir(sd, rel, nil)
		if err != nil {
			return damaged, fmt.Errorf("%s: %w", rel, err)
		}
		for _, d := range rep.Damage {
			damaged = true
			fmt.Fprintf(stdout, "%s:%d: %v\n", d.Segment, d.Offset, d.Err)
		}
		for _, n := range rep.Notes {
			fmt.Fprintf(stdout, "note: %s\n", n)
		}
		state := "ok"
		if len(rep.Damage) > 0 {
			state = "DAMAGED"
		}
		fmt.Fprintf(stdout, "%s: %s: %d segments, %d records\n", state, rel, rep.Segments, rep.Records)
	}
	if len(shardDirs) == 0 {
		return false, errors.New("no shard logs found")
	}
	return damaged, nil
}
