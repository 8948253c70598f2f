package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestReloaderNoticesChangesAndKeepsQuietOtherwise(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "passwd")
	b := filepath.Join(dir, "server.crt")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "one")
	write(b, "cert")
	var calls [2]int
	fail := errors.New("bad file")
	var failNext bool
	r := newReloader(zerolog.Nop(), time.Hour, []reloadable{
		{name: "auth", files: []string{a}, reload: func() error {
			calls[0]++
			if failNext {
				return fail
			}
			return nil
		}},
		{name: "tls", files: []string{b}, reload: func() error { calls[1]++; return nil }},
	})

	if err := r.check(false); err != nil || calls != [2]int{} {
		t.Fatalf("nothing changed: err %v, calls %v", err, calls)
	}
	// Same size, same second: only the inode tells (rename over, as editors do).
	tmp := a + ".new"
	write(tmp, "two")
	if err := os.Rename(tmp, a); err != nil {
		t.Fatal(err)
	}
	if err := r.check(false); err != nil || calls != [2]int{1, 0} {
		t.Fatalf("after replacing passwd: err %v, calls %v", err, calls)
	}
	if err := r.check(false); err != nil || calls != [2]int{1, 0} {
		t.Fatalf("a second poll reloaded again: calls %v", calls)
	}

	// A failing reload is reported once, then retried on the next edit.
	failNext = true
	write(a, "three, longer")
	if err := r.check(false); !errors.Is(err, fail) || calls != [2]int{2, 0} {
		t.Fatalf("failed reload: err %v, calls %v", err, calls)
	}
	if err := r.check(false); err != nil || calls != [2]int{2, 0} {
		t.Fatalf("a failed reload was retried without a change: err %v, calls %v", err, calls)
	}

	// A removed file is a change too (the part decides it is an error).
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if err := r.check(false); !errors.Is(err, fail) || calls != [2]int{3, 0} {
		t.Fatalf("removed file: err %v, calls %v", err, calls)
	}

	// SIGHUP reloads everything, changed or not.
	failNext = false
	if err := r.ReloadAll(); err != nil || calls != [2]int{4, 1} {
		t.Fatalf("ReloadAll: err %v, calls %v", err, calls)
	}
}

func TestExistingDropsUnsetPaths(t *testing.T) {
	got := existing("", "/a", "", "/b")
	if len(got) != 2 || got[0] != "/a" || got[1] != "/b" {
		t.Fatalf("existing = %q", got)
	}
}
