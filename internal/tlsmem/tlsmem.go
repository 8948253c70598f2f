package tlsmem

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"unsafe"
)

// layout holds the offsets of tls.Conn's input buffers, or ok false when
// this Go's crypto/tls is not laid out as Release expects.
var layout = func() (l struct {
	ok                    bool
	rawInput, input, hand uintptr
}) {
	t := reflect.TypeFor[tls.Conn]()
	field := func(name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		if !ok || f.Type != want || len(f.Index) != 1 {
			return 0, false
		}
		return f.Offset, true
	}
	buffer, reader := reflect.TypeFor[bytes.Buffer](), reflect.TypeFor[bytes.Reader]()
	var ok1, ok2, ok3 bool
	l.rawInput, ok1 = field("rawInput", buffer)
	l.input, ok2 = field("input", reader)
	l.hand, ok3 = field("hand", buffer)
	l.ok = ok1 && ok2 && ok3
	return l
}()

// Supported reports whether Release can work with this Go's crypto/tls.
func Supported() bool { return layout.ok }

// Release drops c's input buffers if its handshake is complete and they
// hold no unread bytes, and reports whether it did (false: nothing was
// changed; call again after the next Read).
//
// It must be called by the goroutine that reads c, never during a Read
// or a handshake (see the package doc).
func Release(c *tls.Conn) bool {
	if !layout.ok {
		return false
	}
	raw, input, hand := buffers(c)
	if raw.Len() != 0 || input.Len() != 0 || hand.Len() != 0 || !c.ConnectionState().HandshakeComplete {
		return false
	}
	*raw = bytes.Buffer{}
	input.Reset(nil) // it slices raw's old array
	*hand = bytes.Buffer{}
	return true
}

// buffers points at c's record buffer, decrypted-input reader and
// handshake buffer.
func buffers(c *tls.Conn) (raw *bytes.Buffer, input *bytes.Reader, hand *bytes.Buffer) {
	p := unsafe.Pointer(c)
	return (*bytes.Buffer)(unsafe.Add(p, layout.rawInput)),
		(*bytes.Reader)(unsafe.Add(p, layout.input)),
		(*bytes.Buffer)(unsafe.Add(p, layout.hand))
}
