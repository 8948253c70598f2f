package forwarder

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/integration/kinesalite"
)

// One kinesalite serves every test of the package (each test uses its own
// upstream stream); it starts on first use.
var shared struct {
	once sync.Once
	srv  *kinesalite.Server
	err  error
}

func kinesaliteEndpoint(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = kinesalite.StartServer() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv.Endpoint
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if code == 0 {
		// Idle keep-alive connections of SDK clients are not leaks.
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
