package gateway

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/internal/sdnotify"
)

// TestSystemdNotify plays systemd: a unixgram socket in NOTIFY_SOCKET and
// a 200 ms WatchdogSec. The daemon says READY=1, pets the watchdog while
// ready, stops petting (and says why in STATUS) once its MQTT listener is
// down, and says STOPPING=1 at Close.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	next := func() string {
		t.Helper()
		_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 1024)
		n, err := srv.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.Listen = "127.0.0.1:0"
	d, err := StartWith(cfg, zerolog.Nop(), Options{Systemd: sdnotify.FromEnv()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	if got := next(); !strings.HasPrefix(got, sdnotify.Ready) {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	for range 2 {
		if got := next(); got != sdnotify.Watchdog {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	if ok, why := d.Ready(); !ok {
		t.Fatalf("not ready: %v", why)
	}

	if err := d.broker.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, why := d.Ready(); ok || len(why) != 1 || !strings.Contains(why[0], "mqtt") {
		t.Fatalf("listener down: ready=%v %v", ok, why)
	}
	// The WATCHDOG=1s sent while Close ran, then the STATUS line, then
	// silence until STOPPING=1.
	got := next()
	for got == sdnotify.Watchdog {
		got = next()
	}
	if !strings.HasPrefix(got, "STATUS=not ready: mqtt") {
		t.Fatalf("got %q, want a not-ready STATUS", got)
	}
	_ = srv.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := srv.Read(make([]byte, 1024)); err == nil {
		t.Fatalf("watchdog petted while not ready (%d bytes)", n)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != sdnotify.Stopping {
		t.Fatalf("at Close: %q, want STOPPING=1", got)
	}
}
