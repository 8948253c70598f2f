package auth

import (
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cheapArgon is an argon2id entry with small parameters, so tests that
// only need the format stay fast under -race.
func cheapArgon(t testing.TB, password string) string {
	t.Helper()
	a := argonHash{memory: 64, time: 1, threads: 1, salt: []byte("0123456789abcdef"), key: make([]byte, argonKeyLen)}
	a.key = idKey(&a, []byte(password))
	return a.String()
}

func TestParsePasswordsErrors(t *testing.T) {
	const secretHash = "$7$101$c2FsdHNhbHQ=$AAAA"
	for _, tc := range []struct {
		name, file string
		line       int
		msg        string
	}{
		{"plain text", "# c\n\nd1:hunter2\n", 3, `user "d1": the password is stored in plain text; hash it with ` + "`weir passwd FILE USER`"},
		{"no colon", "d1\n", 1, "no ':' between the user name and the password hash"},
		{"empty user", ":$7$1$a$b\n", 1, "empty user name"},
		{"empty hash", "d1:\n", 1, `user "d1": empty password hash`},
		{"unknown scheme", "d1:$5$rounds$xyz\n", 1, "unsupported hash scheme $5$"},
		{"bad base64 salt", "d1:$7$101$!!!$" + strings.Repeat("A", 88) + "\n", 1, "$7$ salt is not valid base64"},
		{"short hash", "d1:" + secretHash + "\n", 1, "need a salt and a 64-byte hash"},
		{"bad iterations", "d1:$7$0$c2FsdA==$AAAA\n", 1, "iteration count must be"},
		{"too many fields", "d1:$7$1$a$b$c\n", 1, "malformed $7$ hash: expected $7$ITERATIONS$SALT$HASH"},
		{"bad $6$", "d1:$6$c2FsdA==$@@\n", 1, "$6$ hash is not valid base64"},
		{"argon version", "d1:$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43) + "\n", 1, "only version v=19"},
		{"argon memory", "d1:$argon2id$v=19$m=9999999,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43) + "\n", 1, "parameters out of range"},
		{"argon params", "d1:$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43) + "\n", 1, "malformed $argon2id$ parameters"},
		{"argon padded", "d1:$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ=$" + strings.Repeat("A", 43) + "\n", 1, "salt is not valid unpadded base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePasswords("pw", []byte(tc.file))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("ParsePasswords: %v, want a *FileError", err)
			}
			if fe.Line != tc.line || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %q (line %d), want line %d and %q", err, fe.Line, tc.line, tc.msg)
			}
			_, stored, _ := strings.Cut(strings.Split(strings.TrimSpace(tc.file), "\n")[strings.Count(strings.TrimSpace(tc.file), "\n")], ":")
			if len(stored) > 3 && strings.Contains(err.Error(), stored) {
				t.Fatalf("the error %q shows the stored password or hash", err)
			}
		})
	}
}

func TestParsePasswordsDuplicateUser(t *testing.T) {
	h := cheapArgon(t, "x")
	_, err := ParsePasswords("pw", []byte("d1:"+h+"\nd2:"+h+"\nd1:"+h+"\nd3:plain\n"))
	if err == nil || !strings.Contains(err.Error(), `pw:3: user "d1": already defined on line 1`) || !strings.Contains(err.Error(), "pw:4: ") {
		t.Fatalf("got %v, want the duplicate on line 3 and plain text on line 4", err)
	}
}

// TestMosquittoPasswdFiles verifies hashes written by the real
// mosquitto_passwd: 2.x's default $7$ (101 iterations), -I 1000, and the
// 1.x $6$ scheme (-H sha512).
func TestMosquittoPasswdFiles(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd not found: run scripts/install-deps.sh (Debian package mosquitto)")
	}
	file := filepath.Join(t.TempDir(), "passwd")
	for _, args := range [][]string{
		{"-c", "-b", file, "d1", "secret1"},
		{"-b", "-I", "1000", file, "d2", "pässwört 2"},
		{"-b", "-H", "sha512", file, "d3", "old:style"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v: %s", args, err, out)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"d1:$7$101$", "d2:$7$1000$", "d3:$6$"} {
		if !strings.Contains(string(data), want) {
			t.Fatalf("mosquitto_passwd wrote %q, no %q", data, want)
		}
	}
	p, err := LoadPasswords(file)
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range map[string]string{"d1": "secret1", "d2": "pässwört 2", "d3": "old:style"} {
		if err := p.Verify(user, []byte(pw)); err != nil {
			t.Errorf("Verify(%s, right password): %v", user, err)
		}
		err := p.Verify(user, []byte(pw+"x"))
		if !errors.Is(err, ErrBadPassword) || !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Verify(%s, wrong password) = %v, want ErrBadPassword", user, err)
		}
	}
	if err := p.Verify("nobody", []byte("secret1")); !errors.Is(err, ErrUnknownUser) || !errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrBadPassword) {
		t.Errorf("Verify(unknown user) = %v, want ErrUnknownUser", err)
	}
}

func TestSHA512Scheme(t *testing.T) {
	salt := []byte("0123456789ab")
	sum := sha512.Sum512(append([]byte("pw"), salt...))
	line := "u:$6$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(sum[:])
	p, err := ParsePasswords("pw", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if p.Verify("u", []byte("pw")) != nil || p.Verify("u", []byte("pW")) == nil {
		t.Fatal("$6$: SHA-512 over password then salt does not verify")
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=7168,t=5,p=1$") {
		t.Fatalf("HashPassword = %q", h)
	}
	p, err := ParsePasswords("pw", []byte("# mixed\nu:"+h+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify("u", []byte("correct horse")); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify("u", []byte("correct horsE")); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if h2, _ := HashPassword([]byte("correct horse")); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if _, err := HashPassword(nil); err == nil {
		t.Fatal("HashPassword accepted an empty password")
	}
}

func TestUnknownUserCostsAHash(t *testing.T) {
	p, err := ParsePasswords("pw", []byte("a:"+cheapArgon(t, "x")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := p.dummy.(*argonHash)
	if !ok || d.memory != 64 || d.time != 1 {
		t.Fatalf("dummy %#v, want the first entry's scheme and cost", p.dummy)
	}
	empty, _ := ParsePasswords("pw", nil)
	if d, ok := empty.dummy.(*argonHash); !ok || d.memory != argonMemoryKiB {
		t.Fatalf("dummy of an empty file %#v, want the default argon2id cost", empty.dummy)
	}
}

func TestSetPasswordKeepsOtherLines(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passwd")
	d1 := cheapArgon(t, "one")
	orig := "# devices\nd1:" + d1 + "\n\n# ops\nops:" + cheapArgon(t, "ops") + "\n"
	if err := os.WriteFile(file, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(file, "ops", []byte("new ops")); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(file, "d2", []byte("two")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	lines := strings.Split(string(data), "\n")
	if len(lines) != 7 || lines[0] != "# devices" || lines[1] != "d1:"+d1 || lines[2] != "" || lines[3] != "# ops" ||
		!strings.HasPrefix(lines[4], "ops:$argon2id$") || !strings.HasPrefix(lines[5], "d2:$argon2id$") || lines[6] != "" {
		t.Fatalf("file after SetPassword:\n%s", data)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want the old 0640 kept", st.Mode().Perm())
	}
	p, err := LoadPasswords(file)
	if err != nil {
		t.Fatal(err)
	}
	for u, pw := range map[string]string{"d1": "one", "ops": "new ops", "d2": "two"} {
		if err := p.Verify(u, []byte(pw)); err != nil {
			t.Errorf("Verify(%s): %v", u, err)
		}
	}

	if err := DeletePassword(file, "d1"); err != nil {
		t.Fatal(err)
	}
	if err := DeletePassword(file, "d1"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("second delete: %v, want ErrUnknownUser", err)
	}
	if p, err = LoadPasswords(file); err != nil || p.Has("d1") || !p.Has("ops") || p.Len() != 2 {
		t.Fatalf("after delete: %v, %d users", err, p.Len())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestSetPasswordCreatesPrivateFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "new")
	if err := SetPassword(file, "u", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v, mode %v, want 0600", err, st.Mode())
	}
	if err := DeletePassword(filepath.Join(t.TempDir(), "none"), "u"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("DeletePassword on a missing file: %v", err)
	}
	for _, bad := range []string{"", "a:b", "a b", "#x"} {
		if err := SetPassword(file, bad, []byte("pw")); err == nil {
			t.Errorf("SetPassword accepted the user name %q", bad)
		}
	}
}
