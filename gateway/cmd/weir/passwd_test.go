package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-gateway/weir/ingest/auth"
)

// passwd runs weir passwd in-process with stdin.
func passwd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cmdPasswd(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func mosquittoPasswd(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd not found: run scripts/install-deps.sh (Debian package mosquitto)")
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd %v: %v: %s", args, err, out)
	}
}

// TestPasswdSharesAFileWithMosquittoPasswd writes one file with both
// tools, each adding to the other's lines, and checks every user verifies.
func TestPasswdSharesAFileWithMosquittoPasswd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	mosquittoPasswd(t, "-c", "-b", file, "d1", "secret1")
	if out, errs, code := passwd(t, "weir secret\n", "--password-stdin", file, "d2"); code != 0 || !strings.Contains(out, "set the password of d2") {
		t.Fatalf("weir passwd: exit %d: %s%s", code, out, errs)
	}
	mosquittoPasswd(t, "-b", file, "d3", "secret3")
	data, _ := os.ReadFile(file)
	if !strings.Contains(string(data), "d1:$7$") || !strings.Contains(string(data), "d2:$argon2id$") || !strings.Contains(string(data), "d3:$7$") {
		t.Fatalf("file:\n%s", data)
	}
	p, err := auth.LoadPasswords(file)
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range map[string]string{"d1": "secret1", "d2": "weir secret", "d3": "secret3"} {
		if err := p.Verify(user, []byte(pw)); err != nil {
			t.Errorf("Verify(%s): %v", user, err)
		}
	}

	// Replacing d1's mosquitto hash keeps the other lines; CRLF is cut.
	if _, errs, code := passwd(t, "new one\r\n", "--password-stdin", file, "d1"); code != 0 {
		t.Fatalf("replace: %s", errs)
	}
	if out, errs, code := passwd(t, "", "--delete", file, "d3"); code != 0 || !strings.Contains(out, "removed d3") {
		t.Fatalf("delete: exit %d: %s", code, errs)
	}
	p, err = auth.LoadPasswords(file)
	if err != nil || p.Len() != 2 || p.Verify("d1", []byte("new one")) != nil || p.Verify("d2", []byte("weir secret")) != nil {
		t.Fatalf("after replace and delete: %v", err)
	}
}

func TestPasswdCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if _, errs, code := passwd(t, "pw\n", "--password-stdin", file, "u"); code != 1 || !strings.Contains(errs, "does not exist; use -c") {
		t.Fatalf("without -c: exit %d: %s", code, errs)
	}
	if _, errs, code := passwd(t, "pw", "--password-stdin", "-c", file, "u"); code != 0 {
		t.Fatalf("-c: %s", errs)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v %v", err, st)
	}
	// -c replaces the file, as mosquitto_passwd -c does.
	if _, errs, code := passwd(t, "pw2", "--password-stdin", "-c", file, "v"); code != 0 {
		t.Fatalf("-c again: %s", errs)
	}
	p, err := auth.LoadPasswords(file)
	if err != nil || p.Len() != 1 || p.Verify("v", []byte("pw2")) != nil {
		t.Fatalf("after -c: %v", err)
	}
}

func TestPasswdRefusals(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passwd")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		msg         string
	}{
		{"empty password", "\n", []string{"--password-stdin", file, "u"}, 1, "empty password"},
		{"no input", "", []string{"--password-stdin", file, "u"}, 1, "empty password"},
		{"colon in user", "pw\n", []string{"--password-stdin", file, "a:b"}, 2, "contains ':'"},
		{"space in user", "pw\n", []string{"--password-stdin", file, "a b"}, 2, "white space"},
		{"not a terminal", "pw\n", []string{file, "u"}, 1, "not a terminal; use --password-stdin"},
		{"delete unknown", "", []string{"--delete", file, "nobody"}, 1, "unknown user"},
		{"delete with -c", "", []string{"--delete", "-c", file, "u"}, 2, "--delete takes no password"},
		{"one argument", "", []string{file}, 2, "Usage: weir passwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := passwd(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tc.code, tc.msg)
			}
		})
	}
	if data, _ := os.ReadFile(file); len(data) != 0 {
		t.Fatalf("a refused command wrote %q", data)
	}
}

func TestPasswdWarnsAboutOtherBadLines(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(file, []byte("old:plaintext\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := passwd(t, "pw\n", "--password-stdin", file, "u")
	if code != 1 || !strings.Contains(errs, file+":1: ") || !strings.Contains(errs, "plain text") || strings.Contains(errs, "plaintext") {
		t.Fatalf("exit %d: %q", code, errs)
	}
	p, err := auth.ParsePasswords("x", []byte(strings.Split(readFile(t, file), "\n")[1]))
	if err != nil || p.Verify("u", []byte("pw")) != nil {
		t.Fatalf("the new line was not written: %v", err)
	}
}

func TestPasswdHelp(t *testing.T) {
	_, errs, code := weir(t, "passwd", "--help")
	if code != 0 || !strings.Contains(errs, "mosquitto_passwd") || !strings.Contains(errs, "--password-stdin") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if out, _, _ := weir(t, "help"); !strings.Contains(out, "weir passwd") {
		t.Fatal("usage does not list passwd")
	}
	if _, _, code := weir(t, "passwd", "--password-stdin", filepath.Join(t.TempDir(), "f"), "u"); code != 1 {
		t.Fatalf("through run: exit %d", code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
