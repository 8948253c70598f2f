package ledger

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("ledger: closed")

// ErrBadLine wraps a line Read could not parse.
var ErrBadLine = errors.New("ledger: bad line")

// Entry is one acknowledged message.
type Entry struct {
	Device string    `json:"device"`
	Seq    uint64    `json:"seq"`
	Key    string    `json:"key"`
	Ack    time.Time `json:"ack"`
	Probe  string    `json:"probe,omitempty"`
}

// Writer appends entries; safe for concurrent use. The first write error is
// sticky and returned by every later call.
type Writer struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	buf    []byte
	lines  uint64
	err    error
	closed bool
}

// NewWriter buffers lines to w. Nothing reaches w before Flush or a full buffer.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 256<<10)}
}

// Append writes one line.
func (w *Writer) Append(e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	b := w.buf[:0]
	b = append(b, `{"device":`...)
	b = appendString(b, e.Device)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"key":`...)
	b = appendString(b, e.Key)
	b = append(b, `,"ack":"`...)
	b = e.Ack.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.Probe != "" {
		b = append(b, `,"probe":`...)
		b = appendString(b, e.Probe)
	}
	b = append(b, "}\n"...)
	w.buf = b
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("ledger: write: %w", err)
		return w.err
	}
	w.lines++
	return nil
}

// Lines is the number of lines appended so far.
func (w *Writer) Lines() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines
}

// Flush pushes buffered lines to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("ledger: flush: %w", err)
	}
	return w.err
}

// Close flushes and refuses further appends. It does not close the
// underlying writer, which belongs to the caller.
func (w *Writer) Close() error {
	err := w.Flush()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return err
}

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// Read parses a whole ledger. Blank lines are skipped; a malformed line is
// an error naming its line number. A truncated final line (a run killed
// mid-write) is reported the same way.
func Read(r io.Reader) ([]Entry, error) {
	var out []Entry
	err := Scan(r, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Scan calls fn for each entry in order without holding the whole ledger.
func Scan(r io.Reader, fn func(Entry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("%w %d: %v", ErrBadLine, line, err)
		}
		if e.Device == "" {
			return fmt.Errorf("%w %d: no device", ErrBadLine, line)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ledger: read: %w", err)
	}
	return nil
}
