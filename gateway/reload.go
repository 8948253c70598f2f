package gateway

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// reloadInterval is how often the security files are checked for changes.
// A stat per file every two seconds costs nothing measurable, and a
// rotated certificate or a new device password is in force within that
// time without anyone having to send SIGHUP.
const reloadInterval = 2 * time.Second

// reloadable is one part of the daemon that re-reads its own files: the
// credential store, the broker's TLS material, the API's keys. Reload must
// leave the old contents in force when the new ones are bad.
type reloadable struct {
	name   string
	files  []string
	reload func() error
}

// fileStamp is what the watcher compares to notice a change. The inode and
// ctime catch an editor's rename-over and a certbot symlink swap that keeps
// size and mtime; os.Stat follows symlinks, so a swapped link target counts.
type fileStamp struct {
	exists bool
	size   int64
	mtime  time.Time
	ino    uint64
	ctime  int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
		s.ctime = int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec)
	}
	return s
}

// reloader re-reads the parts' files when they change on disk (polled) and
// whenever ReloadAll is called (SIGHUP). One goroutine; reloads never run
// concurrently with each other.
type reloader struct {
	log   zerolog.Logger
	parts []reloadable
	every time.Duration

	mu     sync.Mutex // serialises reloads and guards stamps
	stamps []map[string]fileStamp
}

func newReloader(log zerolog.Logger, every time.Duration, parts []reloadable) *reloader {
	r := &reloader{log: log, parts: parts, every: every, stamps: make([]map[string]fileStamp, len(parts))}
	for i, p := range parts {
		r.stamps[i] = stampAll(p.files)
	}
	return r
}

func stampAll(files []string) map[string]fileStamp {
	m := make(map[string]fileStamp, len(files))
	for _, f := range files {
		m[f] = stampOf(f)
	}
	return m
}

// run polls until ctx ends.
func (r *reloader) run(ctx context.Context) {
	if len(r.parts) == 0 {
		return
	}
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.check(false)
		}
	}
}

// ReloadAll re-reads every part's files, changed or not, and returns the
// parts' errors joined.
func (r *reloader) ReloadAll() error { return r.check(true) }

func (r *reloader) check(force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for i, p := range r.parts {
		now := stampAll(p.files)
		changed := force
		for f, s := range now {
			if r.stamps[i][f] != s {
				changed = true
			}
		}
		if !changed {
			continue
		}
		// Remember the new stamps even when the reload fails, so a bad file
		// is reported once, not every interval; the next edit triggers a retry.
		r.stamps[i] = now
		if err := p.reload(); err != nil {
			r.log.Error().Err(err).Str("files_of", p.name).Strs("files", p.files).
				Msg("reload failed; the previous contents stay in force")
			errs = append(errs, err)
			continue
		}
		r.log.Info().Str("files_of", p.name).Strs("files", p.files).Bool("forced", force).Msg("reloaded")
	}
	return errors.Join(errs...)
}

// existing drops empty names, so optional files that are not configured
// are not watched.
func existing(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
