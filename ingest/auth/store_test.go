package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gopkg.in/yaml.v3"
)

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newTestStore(t *testing.T) (s *Store, pwFile, aclFile string) {
	t.Helper()
	dir := t.TempDir()
	pwFile, aclFile = filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	writeFile(t, pwFile, "d1:"+cheapArgon(t, "one")+"\n")
	writeFile(t, aclFile, "pattern write devices/%u/#\n")
	s, err := NewStore(Config{PasswordFile: pwFile, ACLFile: aclFile})
	if err != nil {
		t.Fatal(err)
	}
	return s, pwFile, aclFile
}

func TestStoreReload(t *testing.T) {
	s, pwFile, aclFile := newTestStore(t)
	if !s.HasPasswords() || !s.HasACL() || s.Verify("d1", []byte("one")) != nil || !s.CanPublish("d1", "c", "devices/d1/t") {
		t.Fatal("initial files not in force")
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("reload of unchanged files: changed=%v err=%v", changed, err)
	}

	// A good change takes effect.
	writeFile(t, pwFile, "d1:"+cheapArgon(t, "uno")+"\nd2:"+cheapArgon(t, "two")+"\n")
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("good change: changed=%v err=%v", changed, err)
	}
	if s.Verify("d1", []byte("uno")) != nil || s.Verify("d2", []byte("two")) != nil || s.Verify("d1", []byte("one")) == nil {
		t.Fatal("new password file not in force")
	}

	// A bad ACL keeps the old one, names file:line, and a good password
	// change made at the same time still takes effect.
	writeFile(t, aclFile, "pattern write devices/%u/#\ntopic rw x y\n")
	writeFile(t, pwFile, "d3:"+cheapArgon(t, "three")+"\n")
	changed, err := s.Reload()
	var fe *FileError
	if !changed || !errors.As(err, &fe) || fe.File != aclFile || fe.Line != 2 {
		t.Fatalf("bad ACL: changed=%v err=%v, want the password change and %s:2", changed, err, aclFile)
	}
	if !s.CanPublish("d3", "c", "devices/d3/t") || s.Verify("d3", []byte("three")) != nil {
		t.Fatal("old ACL or new passwords not in force")
	}

	// A removed file errors and keeps the old contents.
	if err := os.Remove(pwFile); err != nil {
		t.Fatal(err)
	}
	writeFile(t, aclFile, "pattern write devices/%u/#\n")
	changed, err = s.Reload()
	if changed || !errors.Is(err, os.ErrNotExist) || !errors.As(err, &fe) || fe.File != pwFile {
		t.Fatalf("removed file: changed=%v err=%v", changed, err)
	}
	if s.Verify("d3", []byte("three")) != nil {
		t.Fatal("passwords lost when the file was removed")
	}

	// A bad password line is refused with its line, no hash shown.
	writeFile(t, pwFile, "d3:"+cheapArgon(t, "three")+"\nd4:plain-secret\n")
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), pwFile+":2: ") || strings.Contains(err.Error(), "plain-secret") {
		t.Fatalf("bad password file: %v", err)
	}
	if s.Verify("d4", []byte("plain-secret")) == nil {
		t.Fatal("bad password file took effect")
	}
}

func TestStoreWithoutFiles(t *testing.T) {
	s, err := NewStore(Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if s.HasPasswords() || s.HasACL() || !s.CanPublish("", "c", "a") || !s.CanSubscribe("u", "c", "#") || !s.CanReceive("u", "c", "a") {
		t.Fatal("a store without files must allow every topic and report no files")
	}
	if err := s.Verify("u", []byte("p")); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("Verify without a password file: %v", err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("Reload without files: %v %v", changed, err)
	}
}

func TestNewStoreErrors(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	writeFile(t, acl, "topic a/#/b\n")
	_, err := NewStore(Config{PasswordFile: filepath.Join(dir, "missing"), ACLFile: acl})
	var fe *FileError
	if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &fe) || !strings.Contains(err.Error(), acl+":1: ") {
		t.Fatalf("NewStore: %v, want both files' errors", err)
	}
}

// TestStoreChecksWhileReloading runs checks on several goroutines while
// the ACL flips between two versions; under -race it proves the hot path
// needs no lock, and every answer must be one of the two versions'.
func TestStoreChecksWhileReloading(t *testing.T) {
	s, _, aclFile := newTestStore(t)
	versions := []string{"pattern write devices/%u/#\n", "pattern write devices/%u/#\npattern write extra/%c\n"}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if !s.CanPublish("d1", "c1", "devices/d1/x") || s.CanPublish("d1", "c1", "devices/d2/x") {
					t.Error("a check saw neither version")
					return
				}
				s.CanPublish("d1", "c1", "extra/c1")
			}
		})
	}
	for i := range 50 {
		writeFile(t, aclFile, versions[i%2])
		if _, err := s.Reload(); err != nil {
			t.Error(err)
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestConfigValidate(t *testing.T) {
	if errs := (Config{}).WithDefaults().Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	errs := Config{PasswordFile: " /etc/p", ClientIDMustMatch: "cn"}.Validate()
	if len(errs) != 2 || !strings.HasPrefix(errs[0].Error(), "password_file: ") || !strings.HasPrefix(errs[1].Error(), "client_id_must_match: must be one of off, username, identity") {
		t.Fatalf("Validate: %v", errs)
	}
}

// TestConfigYAMLOff: an unquoted `off` must stay the string "off" (YAML
// 1.1 would make it false).
func TestConfigYAMLOff(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("password_file: /p\nclient_id_must_match: off\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.ClientIDMustMatch != "off" || c.PasswordFile != "/p" || len(c.Validate()) != 0 {
		t.Fatalf("%+v", c)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl")
	_, err := LoadACL(path)
	if !errors.Is(err, os.ErrNotExist) || err.Error() != path+": cannot read: no such file or directory" {
		t.Fatalf("LoadACL: %v", err)
	}
}

// ingest counts unknown users apart from wrong passwords through this
// method, without importing the package.
func TestVerifyErrorsTellUnknownUsersApart(t *testing.T) {
	var u interface{ UnknownUser() bool }
	if !errors.As(ErrUnknownUser, &u) || !u.UnknownUser() {
		t.Fatal("ErrUnknownUser does not report UnknownUser() == true")
	}
	if !errors.As(ErrBadPassword, &u) || u.UnknownUser() {
		t.Fatal("ErrBadPassword reports an unknown user")
	}
	for _, err := range []error{ErrUnknownUser, ErrBadPassword} {
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%v does not wrap ErrBadCredentials", err)
		}
	}
}
