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
