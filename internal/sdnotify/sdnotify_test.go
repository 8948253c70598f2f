package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen is the systemd side: a unixgram socket that reads datagrams.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotifyPathAndAbstract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	abstract := "@weir-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, c := range []struct{ env, listen string }{
		{path, path},
		{abstract, "\x00" + abstract[1:]},
	} {
		srv := listen(t, c.listen)
		n := fromEnv(func(k string) string {
			if k == "NOTIFY_SOCKET" {
				return c.env
			}
			return ""
		}, 1)
		for _, msg := range []string{Ready, Watchdog, Stopping + "\nSTATUS=stopping"} {
			if err := n.Notify(msg); err != nil {
				t.Fatal(err)
			}
			if got := read(t, srv); got != msg {
				t.Errorf("%s: got %q, want %q", c.env, got, msg)
			}
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if n := fromEnv(env(nil), 1); n != nil {
		t.Fatalf("no NOTIFY_SOCKET: %+v", n)
	}
	// A nil notifier is a no-op, so callers outside systemd need no branch.
	var none *Notifier
	if err := none.Notify(Ready); err != nil || none.WatchdogInterval() != 0 {
		t.Fatal("nil notifier is not a no-op")
	}
	for name, c := range map[string]struct {
		env  map[string]string
		want time.Duration
	}{
		"watchdog":          {map[string]string{"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000"}, 30 * time.Second},
		"watchdog for us":   {map[string]string{"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, 2 * time.Second},
		"watchdog for else": {map[string]string{"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "43"}, 0},
		"bad usec":          {map[string]string{"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "soon"}, 0},
		"no watchdog":       {map[string]string{"NOTIFY_SOCKET": "/x"}, 0},
	} {
		if got := fromEnv(env(c.env), 42).WatchdogInterval(); got != c.want {
			t.Errorf("%s: interval %v, want %v", name, got, c.want)
		}
	}
}

func TestNotifyNoListener(t *testing.T) {
	n := New(filepath.Join(t.TempDir(), "absent.sock"))
	if err := n.Notify(Ready); !errors.Is(err, ErrSend) {
		t.Fatalf("err = %v, want ErrSend", err)
	}
}
