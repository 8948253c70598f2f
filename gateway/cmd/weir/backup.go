package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/internal/fsutil"
	"github.com/weir-gateway/weir/shards"
	"github.com/weir-gateway/weir/wal"
)

const backupSynopsis = `weir backup --data-dir DIR --to FILE.tar [--api URL]

Copies a gateway's data directory (streams, shard logs, checkpoints and the
API's iterator key) into a tar file whose paths are relative to DIR.

Offline (no --api): the gateway must be stopped; the backup takes the data
directory's lock, so it refuses to run beside a gateway.

Online (--api URL, the running gateway's api.listen): run it on the
gateway's host, as a user who can read DIR. It checks that a gateway answers
there and holds DIR, then copies checkpoints first, then each stream's shard
map, then each shard's segments newest first, each only up to its last whole
record (the preallocated space is left out). Segments are append-only,
whole segments are deleted oldest first, and a segment whose file retention
took away (to reuse it) while it was read is left out with every older one,
so the copy holds every record stored before the backup started and not
deleted by retention meanwhile, possibly more, with no gap; a checkpoint
never points past the records copied. A record half written when its
segment was copied is dropped on restore, as after a crash.

Restore: stop the gateway (or pick a new directory), then
  mkdir NEWDIR && tar -xf FILE.tar -C NEWDIR
and start with data_dir: NEWDIR.` + credentialsHelp

func cmdBackup(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("backup", backupSynopsis, stderr)
	dir := fs.String("data-dir", "", "the gateway's data directory (data_dir)")
	to := fs.String("to", "", "tar file to write (replaced atomically when complete)")
	var af apiFlags
	af.register(fs)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	online := false
	fs.Visit(func(f *flag.Flag) { online = online || f.Name == "api" })
	if *dir == "" || *to == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "weir backup: --data-dir and --to are required")
		fs.Usage()
		return 2
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: !isTerminal(stderr)}).Level(zerolog.WarnLevel)
	store, err := shards.Open(*dir, shards.Options{Logger: log, NoRetentionLoop: true, OpenExistingOnly: true})
	switch {
	case err == nil:
		// Offline, or --api named a gateway that does not hold DIR: the
		// lock keeps any gateway from starting on DIR while it is copied.
		defer store.Close()
		if online {
			fmt.Fprintf(stderr, "weir backup: no gateway holds %s: backing it up offline\n", *dir)
		}
	case errors.Is(err, shards.ErrDataDirLocked) && !online:
		fmt.Fprintf(stderr, "weir backup: %v\nA gateway is running on %s: stop it, or back up online with --api URL (its api.listen).\n", err, *dir)
		return 1
	case errors.Is(err, shards.ErrDataDirLocked):
		if err := checkGateway(af); err != nil {
			fmt.Fprintln(stderr, "weir backup:", err)
			return 1
		}
	default:
		fmt.Fprintln(stderr, "weir backup:", err)
		return 1
	}
	n, size, err := writeBackupFile(*dir, *to)
	if err != nil {
		fmt.Fprintln(stderr, "weir backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d files, %s\n", *to, n, humanBytes(size))
	return 0
}

// checkGateway makes sure a gateway answers at the API, so that an online
// backup copies a directory that is being written by a live gateway and not
// one left locked by something else.
func checkGateway(af apiFlags) error {
	gw, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := gw.Raw(ctx, api.WeirTargetPrefix+"DescribeGateway", struct{}{}); err != nil {
		return explain(err)
	}
	return nil
}

// writeBackupFile writes the backup to a temporary file beside to and
// renames it into place once complete and synced, so a failed run never
// leaves a truncated FILE.tar that looks like a backup.
func writeBackupFile(dir, to string) (files int, size int64, err error) {
	tmp := to + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	b := &backup{dir: dir, tw: tar.NewWriter(f)}
	if err = b.write(); err != nil {
		return 0, 0, err
	}
	if err = b.tw.Close(); err != nil {
		return 0, 0, err
	}
	if err = f.Sync(); err != nil {
		return 0, 0, err
	}
	if err = f.Close(); err != nil {
		return 0, 0, err
	}
	if err = os.Rename(tmp, to); err != nil {
		return 0, 0, err
	}
	return b.files, b.bytes, fsutil.SyncDir(filepath.Dir(to))
}

type backup struct {
	dir         string
	tw          *tar.Writer
	files       int
	bytes       int64
	dirsWritten map[string]bool
}

// write copies in the order that keeps the copy consistent while a gateway
// writes: checkpoints (which only move forward) before the shard maps and
// logs they point into, and each shard map before its shards' segments.
func (b *backup) write() error {
	b.dirsWritten = map[string]bool{}
	top, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	for _, e := range top {
		// LOCK belongs to the process that holds it; temp files are
		// leftovers of interrupted writes.
		if e.Type().IsRegular() && e.Name() != "LOCK" && !strings.HasSuffix(e.Name(), ".tmp") {
			if err := b.copyFile(e.Name()); err != nil {
				return err
			}
		}
	}
	if err := b.copyTree("checkpoints"); err != nil {
		return err
	}
	streams, err := os.ReadDir(filepath.Join(b.dir, "streams"))
	if err != nil {
		return err
	}
	for _, s := range streams {
		if s.IsDir() {
			if err := b.copyStream(filepath.Join("streams", s.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTree copies every regular file under rel except temp files.
func (b *backup) copyTree(rel string) error {
	err := filepath.WalkDir(filepath.Join(b.dir, rel), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasSuffix(d.Name(), ".tmp") {
			return nil
		}
		r, err := filepath.Rel(b.dir, p)
		if err != nil {
			return err
		}
		return b.copyFile(r)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no consumer has committed yet
	}
	return err
}

// copyStream copies a stream's shard map, then the shards it names: a
// shard a reshard creates meanwhile is left out with the map that would
// name it.
func (b *backup) copyStream(rel string) error {
	data, err := os.ReadFile(filepath.Join(b.dir, rel, "stream.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a stream being created or deleted
	}
	if err != nil {
		return err
	}
	var meta struct {
		Shards []struct {
			ID string `json:"id"`
		} `json:"shards"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(b.dir, rel, "stream.json"), err)
	}
	st, err := os.Stat(filepath.Join(b.dir, rel, "stream.json"))
	if err != nil {
		return err
	}
	if err := b.addReader(filepath.Join(rel, "stream.json"), bytes.NewReader(data), int64(len(data)), st); err != nil {
		return err
	}
	// The stream's log (its shards are lanes of it), then the logs of
	// shards from before stream.json version 3, read in place until
	// retention empties them.
	if err := b.copyShard(filepath.Join(rel, "log")); err != nil {
		return err
	}
	for _, sh := range meta.Shards {
		if err := b.copyShard(filepath.Join(rel, sh.ID)); err != nil {
			return err
		}
	}
	return nil
}

// copyShard copies a log's segments, each up to its last whole record
// (all of a sealed one: its footer too). All are opened before any is
// copied. They are copied newest first, each read whole into memory and
// kept only if its name still refers to the same file after the read:
// retention deletes whole segments oldest first and the log reuses a
// deleted segment's file for a new segment (wal/FORMAT.md, "Reuse"), so a
// file renamed away during its read may have been rewritten under us, and
// it and every older segment are gone from the log anyway. What is copied
// is thus a gap-free run of segments ending with the newest.
func (b *backup) copyShard(rel string) error {
	names, err := filepath.Glob(filepath.Join(b.dir, rel, "*.seg"))
	if err != nil {
		return err
	}
	slices.Sort(names) // zero-padded first indexes: name order is log order
	var open []*os.File
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	for _, n := range names {
		f, err := os.Open(n)
		if errors.Is(err, fs.ErrNotExist) {
			for _, o := range open {
				o.Close()
			}
			open = open[:0]
			continue
		}
		if err != nil {
			return err
		}
		open = append(open, f)
	}
	if err := b.mkdir(rel); err != nil {
		return err
	}
	for i := len(open) - 1; i >= 0; i-- {
		f := open[i]
		end, clean, err := wal.DataEnd(f)
		if err != nil {
			if gone, _ := renamedAway(f); gone {
				return nil
			}
			return err
		}
		data := make([]byte, end)
		if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if gone, err := renamedAway(f); err != nil || gone {
			return err
		}
		if !clean && i < len(open)-1 {
			// Only the segment being appended to may end mid-record; an
			// older one that does is damaged, and the backup says so
			// rather than drop what follows.
			return &wal.CorruptionError{Shard: filepath.Base(rel), Segment: f.Name(), Offset: end, Err: wal.ErrCorrupt}
		}
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := b.addReader(filepath.Join(rel, filepath.Base(f.Name())), bytes.NewReader(data), end, st); err != nil {
			return err
		}
	}
	return nil
}

// renamedAway reports whether f's name no longer refers to f: retention
// deleted (or renamed for reuse) the segment.
func renamedAway(f *os.File) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(f.Name())
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !os.SameFile(a, b), nil
}

// copyFile copies a whole small file (metadata, checkpoints, keys).
func (b *backup) copyFile(rel string) error {
	p := filepath.Join(b.dir, rel)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // replaced or deleted meanwhile: its successor is copied or not needed
	}
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	return b.addReader(rel, bytes.NewReader(data), int64(len(data)), st)
}

// addReader adds a file of size bytes read from r, with the mode and time
// of the original (api.key stays 0600).
func (b *backup) addReader(rel string, r io.Reader, size int64, st fs.FileInfo) error {
	if err := b.mkdir(filepath.Dir(rel)); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Size: size, Mode: int64(st.Mode().Perm()), ModTime: st.ModTime(), Format: tar.FormatPAX}
	if err := b.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(b.tw, r)
	if err != nil {
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	if n != size {
		return fmt.Errorf("copy %s: %d bytes of %d", rel, n, size)
	}
	b.files++
	b.bytes += size
	return nil
}

// mkdir adds rel and its parents as directory entries, once each, so the
// extracted tree has the gateway's permissions whatever the umask.
func (b *backup) mkdir(rel string) error {
	if rel == "." || rel == "" || b.dirsWritten[rel] {
		return nil
	}
	if err := b.mkdir(filepath.Dir(rel)); err != nil {
		return err
	}
	b.dirsWritten[rel] = true
	return b.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: filepath.ToSlash(rel) + "/", Mode: 0o750, ModTime: time.Now(), Format: tar.FormatPAX})
}
