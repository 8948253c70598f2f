package s3sink_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/integration/s3rver"
)

// One s3rver serves the package's tests (each uses its own bucket); it
// starts on first use over a directory removed at the end.
var shared struct {
	once sync.Once
	dir  string
	srv  *s3rver.Server
	err  error
}

// sharedBucket is created when the shared server starts; tests keep
// apart by prefix.
const sharedBucket = "archive"

func server(t testing.TB) *s3rver.Server {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "s3sink-s3rver-")
		if shared.err == nil {
			shared.srv, shared.err = s3rver.StartServer(shared.dir, sharedBucket)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
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
