package ingest

import (
	"context"
	"encoding/json"
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
	for _, want := range []string{`"level":"warn"`, `"error":"boom"`, `"client_id":"c1"`, `"hook":"x"`, `"source":"mochi"`, `"level":"debug"`, `"n":3`, `"d_ms":1000`} {
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

// TestConnLogStorm: 5,000 logins and 5,000 disconnects within one second
// write at most the burst, then one summary line with the counts left out.
func TestConnLogStorm(t *testing.T) {
	logs := &logBuffer{}
	c := newConnLog(zerolog.New(logs))
	t0 := time.Unix(1000, 0)
	now := t0
	c.now = func() time.Time { return now }
	written := 0
	for i := range 10_000 {
		now = t0.Add(time.Duration(i) * 100 * time.Microsecond) // all within 1 s
		if e := c.event(i%2 == 0); e != nil {
			e.Msg("line")
			written++
		}
	}
	// The burst, plus what the rate refills within the second.
	if written < connLogBurst || written > connLogBurst+connLogRate+1 {
		t.Errorf("%d lines written in a storm of 10,000", written)
	}
	if n := logs.count("mqtt connection lines suppressed"); n != 1 {
		t.Fatalf("%d summary lines, want 1 (the first suppressed event writes one; the next is due after %v)", n, connLogSummary)
	}
	// The next summary, after the interval, counts what the first did not.
	now = t0.Add(connLogSummary + time.Second)
	if e := c.event(true); e == nil {
		t.Fatal("event after the storm suppressed")
	} else {
		e.Msg("line")
	}
	if n := logs.count("mqtt connection lines suppressed"); n != 2 {
		t.Fatalf("%d summary lines after the interval, want 2", n)
	}
	var sum uint64
	for _, line := range strings.Split(strings.TrimSpace(logs.buf.String()), "\n") {
		if !strings.Contains(line, "suppressed") {
			continue
		}
		var m struct{ Logins, Disconnects uint64 }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		sum += m.Logins + m.Disconnects
	}
	if want := uint64(10_000 - written); sum != want {
		t.Errorf("summaries count %d suppressed lines, want %d", sum, want)
	}
}
