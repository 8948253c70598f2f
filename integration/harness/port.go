package harness

import (
	"net"
	"sync"
	"testing"
)

// handedOut remembers every port FreePort returned in this process, so two
// gateways started by parallel tests never get the same one even though
// the kernel may offer it again once the probe listener is closed.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		handedOut.Lock()
		seen := handedOut.ports[p]
		handedOut.ports[p] = true
		handedOut.Unlock()
		if !seen {
			return p
		}
	}
	t.Fatal("harness: no unused free port after 50 tries")
	return 0
}
