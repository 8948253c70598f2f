package auth

import (
	"errors"
	"strconv"
)

// ErrBadCredentials is wrapped by every refusal of Verify, so that a
// caller answering "bad user name or password" needs one errors.Is.
var ErrBadCredentials = errors.New("auth: bad user name or password")

// ErrUnknownUser and ErrBadPassword tell the two refusals apart for logs
// and metrics; both wrap ErrBadCredentials. A client must not be told
// which one it was.
var (
	ErrUnknownUser error = &credentialError{what: "unknown user", unknown: true}
	ErrBadPassword error = &credentialError{what: "wrong password"}
)

// credentialError is the type of both refusals. Its UnknownUser method
// lets a caller that does not import this package (ingest counts the two
// apart through a one-method interface) tell them apart without matching
// error text.
type credentialError struct {
	what    string
	unknown bool
}

func (e *credentialError) Error() string     { return ErrBadCredentials.Error() + ": " + e.what }
func (e *credentialError) Unwrap() error     { return ErrBadCredentials }
func (e *credentialError) UnknownUser() bool { return e.unknown }

// FileError is one problem on one line of a password or ACL file. Line is
// 1-based; 0 means the file as a whole. A parser reports every bad line it
// finds, joined with errors.Join, so errors.As finds the first of them.
type FileError struct {
	File string
	Line int
	Err  error
}

func (e *FileError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Err.Error()
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}

func (e *FileError) Unwrap() error { return e.Err }

// fileErrors collects the errors of one file.
type fileErrors struct {
	name string
	errs []error
}

func (f *fileErrors) add(line int, err error) {
	f.errs = append(f.errs, &FileError{File: f.name, Line: line, Err: err})
}

func (f *fileErrors) err() error { return errors.Join(f.errs...) }
