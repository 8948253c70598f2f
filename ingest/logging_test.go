package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"
)

func TestMochiLogHandler(t *testing.T) {
	if newMochiLogger(zerolog.Logger{}).Enabled(context.Background(), slog.LevelError) {
		t.Error("a zero zerolog.Logger must disable mochi's logs")
	}
	if newMochiLogger(zerolog.Nop()).Enabled(context.Background(), slog.LevelError) {
		t.Error("zerolog.Nop must disable mochi's logs")
	}
	warnOnly := newMochiLogger(zerolog.New(&logBuffer{}).Level(zerolog.WarnLevel))
	if warnOnly.Enabled(context.Background(), slog.LevelInfo) || !warnOnly.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("mochi Info must map to Debug and Warn to Warn")
	}

	logs := &logBuffer{}
	l := newMochiLogger(zerolog.New(logs)).With("hook", "x")
	pk := packets.Packet{Payload: []byte("SECRET-PAYLOAD")}
	for range 20 {
		l.Error("publish packet error", "error", errors.New("boom"), "packet", pk, "client", "c1")
	}
	l.Info("added hook", "n", 3, "d", time.Second)
	out := logs.buf.String()
	if strings.Contains(out, "SECRET-PAYLOAD") {
		t.Errorf("packet contents were logged: %s", out)
	}
	if n := logs.count(`"message":"publish packet error"`); n != 1 {
		t.Errorf("%d warn lines for 20 errors in one second, want 1", n)
	}
	for _, want := range []string{`"level":"warn"`, `"error":"boom"`, `"client":"c1"`, `"hook":"x"`, `"component":"mqtt"`, `"level":"debug"`, `"n":3`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(time.Second)
	t0 := time.Unix(1000, 0)
	if ok, _ := l.allow(t0); !ok {
		t.Fatal("first event suppressed")
	}
	for i := range 5 {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatal("event inside the interval allowed")
		}
	}
	ok, suppressed := l.allow(t0.Add(time.Second))
	if !ok || suppressed != 5 {
		t.Errorf("after the interval: ok=%v suppressed=%d, want true 5", ok, suppressed)
	}
}
