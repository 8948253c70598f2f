package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ValidUserName reports why a user name cannot go into a password file:
// ':' ends the name and white space would be trimmed or split by tools.
func ValidUserName(user string) error {
	switch {
	case user == "":
		return errors.New("auth: empty user name")
	case strings.ContainsRune(user, ':'):
		return fmt.Errorf("auth: user name %q contains ':', which separates the name from the hash", user)
	case strings.ContainsAny(user, " \t\r\n\v\f"):
		return fmt.Errorf("auth: user name %q contains white space", user)
	case user[0] == '#':
		return fmt.Errorf("auth: user name %q starts with '#', which marks a comment", user)
	}
	return nil
}

// SetPassword adds user with a new argon2id hash of password, or replaces
// the hash on user's line; every other line, comments included, is kept
// as it was. The file is rewritten atomically (temp file, fsync, rename,
// fsync of the directory); a new file gets mode 0600, an existing one
// keeps its mode and, where permitted, its owner.
func SetPassword(path, user string, password []byte) error {
	entry, err := newEntry(user, password)
	if err != nil {
		return err
	}
	return editPasswordFile(path, true, func(lines [][]byte) ([][]byte, error) {
		out, found := replaceUser(lines, user, entry)
		if !found {
			out = append(out, entry)
		}
		return out, nil
	})
}

// NewPasswordFile writes a file holding only user's entry, replacing any
// file at path (mosquitto_passwd -c); the write is atomic and a new file
// gets mode 0600.
func NewPasswordFile(path, user string, password []byte) error {
	entry, err := newEntry(user, password)
	if err != nil {
		return err
	}
	return editPasswordFile(path, true, func([][]byte) ([][]byte, error) {
		return [][]byte{entry}, nil
	})
}

// newEntry is user's line with a new hash of password.
func newEntry(user string, password []byte) ([]byte, error) {
	if err := ValidUserName(user); err != nil {
		return nil, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	return []byte(user + ":" + hash), nil
}

// DeletePassword removes user's line; the error wraps ErrUnknownUser if
// the file has none.
func DeletePassword(path, user string) error {
	return editPasswordFile(path, false, func(lines [][]byte) ([][]byte, error) {
		out, found := replaceUser(lines, user, nil)
		if !found {
			return nil, fmt.Errorf("%w: %q is not in %s", ErrUnknownUser, user, path)
		}
		return out, nil
	})
}

// replaceUser puts entry in place of user's first line and drops any
// later line of the same user; a nil entry drops them all.
func replaceUser(lines [][]byte, user string, entry []byte) ([][]byte, bool) {
	out := lines[:0:0]
	found := false
	for _, l := range lines {
		t := bytes.TrimSpace(l)
		if u, _, ok := bytes.Cut(t, []byte{':'}); ok && len(t) > 0 && t[0] != '#' && string(u) == user {
			if !found && entry != nil {
				out = append(out, entry)
			}
			found = true
			continue
		}
		out = append(out, l)
	}
	return out, found
}

// editPasswordFile rewrites the file at path through edit, which gets
// and returns its lines without their '\n'.
func editPasswordFile(path string, create bool, edit func([][]byte) ([][]byte, error)) error {
	// Edit the file a symlink points at, not the link.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	data, err := os.ReadFile(path)
	var mode fs.FileMode = 0o600
	var st fs.FileInfo
	switch {
	case err == nil:
		if st, err = os.Stat(path); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		mode = st.Mode().Perm()
	case create && errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("auth: read password file: %w", err)
	}
	var lines [][]byte
	if len(data) > 0 {
		lines = bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
	}
	lines, err = edit(lines)
	if err != nil {
		return err
	}
	var out []byte
	for _, l := range lines {
		out = append(append(out, l...), '\n')
	}
	return writeAtomic(path, out, mode, st)
}

// writeAtomic replaces path with data so that a crash leaves either the
// old or the new file, never a torn one; st is the old file's info (nil
// if new), whose owner is kept.
func writeAtomic(path string, data []byte, mode fs.FileMode, st fs.FileInfo) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("auth: write password file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("auth: write password file: %w", err)
	}
	if st != nil {
		keepOwner(tmp, st)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("auth: write password file: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("auth: write password file: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("auth: write password file: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: write password file: %w", err)
	}
	// The rename is done; a failure to sync the directory is reported
	// but leaves nothing to clean up.
	d, derr := os.Open(dir)
	if derr == nil {
		derr = d.Sync()
		d.Close()
	}
	if derr != nil {
		return fmt.Errorf("auth: sync directory of password file: %w", derr)
	}
	return nil
}
