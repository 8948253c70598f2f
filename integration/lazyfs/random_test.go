package lazyfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRandomNamespaceOps runs random creates, writes, syncs, renames
// (within and across directories, files and directories), unlinks, mkdirs
// and rmdirs, cutting now and then. Every cut must succeed without
// anomalies, leave an empty stash, and be a fixed point: a second cut
// right after changes nothing. Files made durable at the start and never
// touched again must survive every cut.
func TestRandomNamespaceOps(t *testing.T) {
	e := mount(t, Options{}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	dirs := []string{".", "a", "b", "a/c"}
	for _, d := range dirs[1:] {
		e.mkdir(d)
	}
	e.syncDir(".")
	e.syncDir("a")
	e.mkdir("stable")
	e.syncDir(".")
	for i := 0; i < 5; i++ {
		e.durable(fmt.Sprintf("stable/s%d", i), fmt.Sprint("stable ", i))
	}
	pick := func() string {
		return filepath.Join(dirs[rng.IntN(len(dirs))], fmt.Sprint("n", rng.IntN(4)))
	}
	ignore := func(error) {} // random ops fail often (ENOENT, ENOTEMPTY...): that is fine
	for step := 0; step < 600; step++ {
		p := pick()
		switch rng.IntN(11) {
		case 0, 1:
			e.writeIfPossible(p, rng)
		case 2:
			if f, err := os.OpenFile(e.p(p), os.O_RDWR, 0); err == nil {
				ignore(f.Sync())
				f.Close()
			}
		case 3:
			ignore(os.Rename(e.p(p), e.p(pick())))
		case 4:
			ignore(unix.Rename(e.p(p), e.p(pick()))) // may replace directories
		case 5:
			ignore(os.Remove(e.p(p)))
		case 6:
			ignore(os.Mkdir(e.p(p), 0o755))
		case 7, 8:
			if d := dirs[rng.IntN(len(dirs))]; dirExists(e.p(d)) {
				e.syncDir(d)
			}
		case 9:
			ignore(os.Link(e.p(p), e.p(pick())))
		case 10:
			if step%5 == 0 {
				e.cut()
				if logs := e.logs.String(); strings.Contains(logs, "not found") || strings.Contains(logs, "two places") {
					t.Fatalf("step %d: anomalies:\n%s", step, logs)
				}
				assertStashEmpty(t, e)
				before := e.fs.Stats()
				e.cut()
				if after := e.fs.Stats(); after.EntriesUndone != before.EntriesUndone || after.BytesUndone != before.BytesUndone {
					t.Fatalf("step %d: a second cut undid more: %+v -> %+v", step, before, after)
				}
				for i := 0; i < 5; i++ {
					e.want(fmt.Sprintf("stable/s%d", i), fmt.Sprint("stable ", i))
				}
			}
		}
	}
	if e.fs.Stats().Cuts < 10 {
		t.Errorf("only %d cuts ran", e.fs.Stats().Cuts)
	}
}

func (e *env) writeIfPossible(name string, rng *rand.Rand) {
	f, err := os.OpenFile(e.p(name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 1+rng.IntN(3*pageSize))
	for i := range buf {
		buf[i] = byte('a' + rng.IntN(26))
	}
	if _, err := f.WriteAt(buf, int64(rng.IntN(2*pageSize))); err != nil {
		e.t.Fatal(err)
	}
	if rng.IntN(3) == 0 {
		e.must(f.Truncate(int64(rng.IntN(3 * pageSize))))
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
