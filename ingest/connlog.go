package ingest

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Connection log lines ("mqtt login", "mqtt disconnect") are at info: an
// operator wants to see a device come and go. A fleet reconnecting at
// once (a broker restart, a network flap: thousands of devices within a
// second) would flood the log, so past connLogBurst lines the lines share
// connLogRate per second, and what was left out is counted and reported
// in one "mqtt connection lines suppressed" line per connLogSummary.
const (
	connLogRate    = 50
	connLogBurst   = 200
	connLogSummary = 10 * time.Second
)

// connLog rate-limits the connection lines of one broker.
type connLog struct {
	log   zerolog.Logger
	limit *rate.Limiter
	now   func() time.Time

	mu                  sync.Mutex
	logins, disconnects uint64 // suppressed since the last summary
	lastSummary         time.Time
}

func newConnLog(log zerolog.Logger) *connLog {
	return &connLog{log: log, limit: rate.NewLimiter(connLogRate, connLogBurst), now: time.Now}
}

// event returns the event to fill for one line, or nil when this line is
// suppressed. Either way it may first write the summary of what was left
// out.
func (c *connLog) event(login bool) *zerolog.Event {
	if !c.log.Info().Enabled() {
		return nil
	}
	now := c.now()
	ok := c.limit.AllowN(now, 1)
	c.mu.Lock()
	if !ok {
		if login {
			c.logins++
		} else {
			c.disconnects++
		}
	}
	var logins, disconnects uint64
	if (c.logins > 0 || c.disconnects > 0) && now.Sub(c.lastSummary) >= connLogSummary {
		logins, disconnects = c.logins, c.disconnects
		c.logins, c.disconnects, c.lastSummary = 0, 0, now
	}
	c.mu.Unlock()
	if logins > 0 || disconnects > 0 {
		c.log.Info().Uint64("logins", logins).Uint64("disconnects", disconnects).
			Int("per_second", connLogRate).Msg("mqtt connection lines suppressed")
	}
	if !ok {
		return nil
	}
	return c.log.Info()
}

// sessionLogHook writes the "mqtt disconnect" line, the pair of auth.go's
// "mqtt login", with the same keys.
type sessionLogHook struct {
	mqtt.HookBase
	lines *connLog
}

func (h *sessionLogHook) ID() string { return "weir-session-log" }

func (h *sessionLogHook) Provides(b byte) bool { return b == mqtt.OnDisconnect }

// OnDisconnect logs a client that had logged in; err is why it ended
// (nil: it sent DISCONNECT).
func (h *sessionLogHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	tc, ok := cl.Net.Conn.(*trackedConn)
	if !ok || !tc.auth.ok {
		return
	}
	e := h.lines.event(false)
	if e == nil {
		return
	}
	reason := "client sent DISCONNECT"
	if err != nil {
		reason = err.Error()
	}
	e.Str("identity", tc.auth.identity).
		Str("client_id", cl.ID).
		Str("remote", remoteString(tc)).
		Str("listener", tc.l.id).
		Uint8("protocol", cl.Properties.ProtocolVersion).
		Bool("tls", tc.l.tls != nil).
		Str("reason", reason).
		Bool("taken_over", cl.IsTakenOver()).
		Int64("connected_ms", h.lines.now().Sub(tc.auth.since).Milliseconds()).
		Msg("mqtt disconnect")
}
