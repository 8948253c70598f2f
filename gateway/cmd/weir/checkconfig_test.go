package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigReadsTheAuthFiles: a config that is fine by itself but
// names a password file with a plain-text password fails check-config
// with that file's line, as the gateway's start would.
func TestCheckConfigReadsTheAuthFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	acl := filepath.Join(dir, "acl")
	cfg := filepath.Join(dir, "weir.yaml")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(acl, "pattern write devices/%u/#\n")
	write(cfg, "data_dir: "+dir+"\nauth:\n  password_file: "+pw+"\n  acl_file: "+acl+"\n")
	write(pw, "# devices\nd1:secret1\n")

	var out, errb bytes.Buffer
	if code := cmdCheckConfig([]string{cfg}, &out, &errb); code != 1 || !strings.Contains(errb.String(), pw+":2:") {
		t.Fatalf("plain-text password: exit %d, stderr %q; want 1 and %s:2", code, errb.String(), pw)
	}
	if strings.Contains(errb.String(), "secret1") {
		t.Fatalf("check-config printed the password: %q", errb.String())
	}

	out.Reset()
	errb.Reset()
	if _, errs, code := passwd(t, "secret1\n", "-c", "--password-stdin", pw, "d1"); code != 0 {
		t.Fatalf("weir passwd: exit %d: %s", code, errs)
	}
	if code := cmdCheckConfig([]string{cfg}, &out, &errb); code != 0 || !strings.Contains(out.String(), ": ok") {
		t.Fatalf("hashed password: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestCheckConfigReloadFrom: --reload-from prints what a SIGHUP would do,
// grouped live / restart needed / not applied, each with the new file's
// line; a bad running file is an error.
func TestCheckConfigReloadFrom(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.yaml")
	next := filepath.Join(dir, "new.yaml")
	if err := os.WriteFile(old, []byte("data_dir: /d\nstreams:\n  - name: a\n  - name: gone\nroutes:\n  - {filter: \"a/#\", stream: a}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(next, []byte("data_dir: /d\nmqtt:\n  listen: 127.0.0.1:1884\nstreams:\n  - name: a\n    retention: 1h\n"+
		"routes:\n  - {filter: \"a/#\", stream: a}\n  - {filter: \"b/#\", stream: a}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := weir(t, "check-config", "--reload-from", old, next)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := []string{
		next + ": ok",
		"live:",
		"  " + next + ":6: streams[0].retention: 24h → 1h",
		"  " + next + ":9: routes[1]: added b/# → a key {client_id}",
		"restart needed:",
		"  " + next + ":3: mqtt.listen: 127.0.0.1:1883 → 127.0.0.1:1884",
		"not applied:",
		"  " + next + ":4: streams: removed gone (no longer declared: the stream and its data stay; delete it with DeleteStream, e.g. aws kinesis delete-stream)",
	}
	if got := lines(stdout); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stdout:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
	}
	if _, _, code := weir(t, "check-config", "--reload-from", old, old); code != 0 {
		t.Fatal("same file: nonzero exit")
	}
	if stdout, _, _ := weir(t, "check-config", "--reload-from", old, old); !strings.Contains(stdout, "reload: no changes") {
		t.Fatalf("same file: %q", stdout)
	}
	if _, stderr, code := weir(t, "check-config", "--reload-from", filepath.Join(dir, "missing.yaml"), next); code != 1 || !strings.Contains(stderr, "--reload-from") {
		t.Fatalf("missing running file: exit %d, %q", code, stderr)
	}
}
