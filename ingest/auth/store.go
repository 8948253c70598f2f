package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
)

// Store is the live, reloadable pair of files. Checks read an immutable
// snapshot through an atomic pointer and take no lock; Reload builds a
// new snapshot and swaps it in.
type Store struct {
	cfg Config
	cur atomic.Pointer[snapshot]
	mu  sync.Mutex // serialises Reload
}

// snapshot is one consistent state; a nil field means that file is not
// configured.
type snapshot struct {
	pw            *Passwords
	acl           *ACL
	pwRaw, aclRaw []byte // the bytes in force, to tell a change from a touch
}

// NewStore loads the configured files; either path may be empty. Any
// error in either file is returned (as *FileError with file:line where it
// is a line's fault) and nothing is loaded.
func NewStore(c Config) (*Store, error) {
	s := &Store{cfg: c}
	snap := &snapshot{}
	var errs []error
	if c.PasswordFile != "" {
		raw, pw, err := loadFile(c.PasswordFile, ParsePasswords)
		snap.pw, snap.pwRaw = pw, raw
		errs = append(errs, err)
	}
	if c.ACLFile != "" {
		raw, acl, err := loadFile(c.ACLFile, ParseACL)
		snap.acl, snap.aclRaw = acl, raw
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.cur.Store(snap)
	return s, nil
}

func loadFile[T any](path string, parse func(string, []byte) (*T, error)) ([]byte, *T, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		// The path is already in FileError; keep the cause, which still
		// answers errors.Is(err, fs.ErrNotExist).
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("cannot read: %w", pe.Err)
		}
		return nil, nil, &FileError{File: path, Err: err}
	}
	v, err := parse(path, raw)
	return raw, v, err
}

// Reload re-reads both files. Each file is taken on its own: a file that
// cannot be read or has a bad line leaves its previous contents in force
// and its error is returned, while a good change to the other file takes
// effect. changed reports whether anything new took effect; a file
// rewritten with the same bytes is no change.
func (s *Store) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	next := *old
	var errs []error
	if s.cfg.PasswordFile != "" {
		raw, pw, err := loadFile(s.cfg.PasswordFile, ParsePasswords)
		if err == nil && !bytes.Equal(raw, old.pwRaw) {
			next.pw, next.pwRaw, changed = pw, raw, true
		}
		errs = append(errs, err)
	}
	if s.cfg.ACLFile != "" {
		raw, acl, err := loadFile(s.cfg.ACLFile, ParseACL)
		if err == nil && !bytes.Equal(raw, old.aclRaw) {
			next.acl, next.aclRaw, changed = acl, raw, true
		}
		errs = append(errs, err)
	}
	if changed {
		s.cur.Store(&next)
	}
	return changed, errors.Join(errs...)
}

// HasPasswords reports whether a password file is configured.
func (s *Store) HasPasswords() bool { return s.cur.Load().pw != nil }

// HasACL reports whether an ACL file is configured; without one every
// check allows.
func (s *Store) HasACL() bool { return s.cur.Load().acl != nil }

// Verify checks a user's password against the current password file.
// Without a password file no user is known: the error wraps
// ErrUnknownUser.
func (s *Store) Verify(user string, password []byte) error {
	pw := s.cur.Load().pw
	if pw == nil {
		return ErrUnknownUser
	}
	return pw.Verify(user, password)
}

// CanPublish is ACL.CanPublish on the current ACL; true without one.
func (s *Store) CanPublish(user, clientID, topic string) bool {
	acl := s.cur.Load().acl
	return acl == nil || acl.CanPublish(user, clientID, topic)
}

// CanSubscribe is ACL.CanSubscribe on the current ACL; true without one.
func (s *Store) CanSubscribe(user, clientID, filter string) bool {
	acl := s.cur.Load().acl
	return acl == nil || acl.CanSubscribe(user, clientID, filter)
}

// CanReceive is ACL.CanReceive on the current ACL; true without one.
func (s *Store) CanReceive(user, clientID, topic string) bool {
	acl := s.cur.Load().acl
	return acl == nil || acl.CanReceive(user, clientID, topic)
}
