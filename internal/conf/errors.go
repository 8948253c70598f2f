package conf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidValue is wrapped by every *ValueError, so that callers can tell
// a malformed value from other failures with errors.Is.
var ErrInvalidValue = errors.New("conf: invalid value")

// ValueError reports a value that does not parse as its type. Its message
// has no package prefix because it is shown to operators after a key path.
type ValueError struct {
	Type   string // "duration", "size"
	Value  string // the text as written
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Type, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidValue) true.
func (e *ValueError) Unwrap() error { return ErrInvalidValue }

// FieldError is one problem with one configuration key. Path is a YAML key
// path relative to the Config that produced it, e.g. "rate.max_wait" or
// "[2].name"; an empty Path means the Config as a whole.
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf returns a FieldError for path with a formatted message.
func Errorf(path, format string, args ...any) error {
	return FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Join appends a key path to a prefix: Join("streams[0]", "rate.max_wait")
// is "streams[0].rate.max_wait", Join("streams", "[0]") is "streams[0]".
func Join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	default:
		return prefix + "." + path
	}
}

// Index returns the path of element i of a sequence: Index("streams", 0)
// is "streams[0]".
func Index(prefix string, i int) string {
	return prefix + "[" + strconv.Itoa(i) + "]"
}

// Prefix puts prefix in front of the path of every FieldError in errs.
// Errors of other types become a FieldError at prefix carrying their
// message, so nothing a Validate returns is lost or left without a key.
func Prefix(prefix string, errs []error) []error {
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, 0, len(errs))
	for _, err := range errs {
		var fe FieldError
		if errors.As(err, &fe) {
			out = append(out, FieldError{Path: Join(prefix, fe.Path), Msg: fe.Msg})
			continue
		}
		out = append(out, FieldError{Path: prefix, Msg: err.Error()})
	}
	return out
}

// ErrorList collects FieldErrors while a Validate walks its fields. Its
// underlying type is []error, so Validate can return it directly.
type ErrorList []error

// Add records a problem with path.
func (l *ErrorList) Add(path, format string, args ...any) {
	*l = append(*l, Errorf(path, format, args...))
}

// AddErr records err at path when err is not nil; a *ValueError or other
// error keeps its message.
func (l *ErrorList) AddErr(path string, err error) {
	if err == nil {
		return
	}
	var fe FieldError
	if errors.As(err, &fe) {
		*l = append(*l, FieldError{Path: Join(path, fe.Path), Msg: fe.Msg})
		return
	}
	*l = append(*l, FieldError{Path: path, Msg: err.Error()})
}

// Nest records the errors of an embedded Config under prefix.
func (l *ErrorList) Nest(prefix string, errs []error) {
	*l = append(*l, Prefix(prefix, errs)...)
}

// Enum records an error at path unless got is one of allowed.
func (l *ErrorList) Enum(path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	l.Add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
}
