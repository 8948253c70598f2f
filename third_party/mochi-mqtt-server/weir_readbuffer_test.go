package mqtt

import (
	"net"
	"testing"
)

type sizedConn struct {
	net.Conn
	size int
}

func (c sizedConn) ReadBufferSize() int { return c.size }

// weir: a connection that implements ReadBufferSizer gets a read buffer
// of its size; others, and one that answers 0, get the server's option.
func TestReadBufferSizer(t *testing.T) {
	s := New(&Options{ClientNetReadBufferSize: 1024})
	defer s.Close()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	for _, tc := range []struct {
		conn net.Conn
		want int
	}{
		{sizedConn{a, 64}, 64},
		{sizedConn{a, 0}, 1024},
		{a, 1024},
	} {
		cl := s.NewClient(tc.conn, "t", "id", false)
		if got := cl.Net.bconn.Size(); got != tc.want {
			t.Errorf("%#v: read buffer %d, want %d", tc.conn, got, tc.want)
		}
	}
}
