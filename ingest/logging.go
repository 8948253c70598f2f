package ingest

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// limiter lets one event through per interval and counts the rest, so that
// a fleet hammering a full stream produces one log line a second with a
// count, not one line per message.
type limiter struct {
	lim        *rate.Limiter
	suppressed atomic.Uint64 // rate.Limiter does not count what it refuses
}

func newLimiter(every time.Duration) *limiter {
	return &limiter{lim: rate.NewLimiter(rate.Every(every), 1)}
}

// allow reports whether to log now and, if so, how many events were
// suppressed since the last line.
func (l *limiter) allow(now time.Time) (bool, uint64) {
	if !l.lim.AllowN(now, 1) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// mochiLogHandler sends mochi's slog output to the gateway's zerolog
// logger. mochi logs at Info what an operator does not need (hooks added,
// listener attached) and logs one Warn/Error line per failed packet, with
// the whole packet (payload included) as an attribute; so here Info and
// below become Debug, Warn and above share one rate limit, and packet
// attributes are dropped.
type mochiLogHandler struct {
	log   zerolog.Logger
	limit *limiter
	// min is the lowest level the logger writes (zerolog.Disabled for a
	// zero or disabled logger), so Enabled needs no event.
	min zerolog.Level
}

func newMochiLogger(log zerolog.Logger) *slog.Logger {
	min := zerolog.Disabled
	for _, lvl := range []zerolog.Level{zerolog.WarnLevel, zerolog.DebugLevel} {
		if e := log.WithLevel(lvl); e != nil {
			e.Discard()
			min = lvl
		}
	}
	return slog.New(&mochiLogHandler{
		log:   log.With().Str("source", "mochi").Logger(),
		limit: newLimiter(time.Second),
		min:   min,
	})
}

func zerologLevel(l slog.Level) zerolog.Level {
	if l >= slog.LevelWarn {
		return zerolog.WarnLevel
	}
	return zerolog.DebugLevel
}

// Enabled reports whether the level would be written, so that mochi skips
// building records for Debug lines.
func (h *mochiLogHandler) Enabled(_ context.Context, l slog.Level) bool {
	zl := zerologLevel(l)
	return h.min != zerolog.Disabled && zl >= h.min && zl >= zerolog.GlobalLevel()
}

// Handle writes one record.
func (h *mochiLogHandler) Handle(_ context.Context, r slog.Record) error {
	zl := zerologLevel(r.Level)
	var suppressed uint64
	if zl >= zerolog.WarnLevel {
		ok, n := h.limit.allow(r.Time)
		if !ok {
			return nil
		}
		suppressed = n
	}
	e := h.log.WithLevel(zl)
	if e == nil {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(e, "", a)
		return true
	})
	if suppressed > 0 {
		e.Uint64("suppressed", suppressed)
	}
	e.Msg(r.Message)
	return nil
}

// WithAttrs returns a handler whose lines carry attrs.
func (h *mochiLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := h.log.With()
	for _, a := range attrs {
		if dropAttr(a.Key) {
			continue
		}
		c = c.Str(mochiKey(a.Key), a.Value.Resolve().String())
	}
	return &mochiLogHandler{log: c.Logger(), limit: h.limit, min: h.min}
}

// WithGroup is not used by mochi; groups are flattened.
func (h *mochiLogHandler) WithGroup(string) slog.Handler { return h }

// mochiKey renames mochi's keys to weir's for the same thing, so one
// query finds a device in both kinds of line.
func mochiKey(k string) string {
	if k == "client" {
		return "client_id"
	}
	return k
}

// dropAttr hides packet dumps: they hold payloads (device data) and can be
// as large as the maximum packet size.
func dropAttr(key string) bool { return key == "packet" || key == "pk" }

func addAttr(e *zerolog.Event, prefix string, a slog.Attr) {
	if dropAttr(a.Key) {
		return
	}
	key := mochiKey(a.Key)
	if prefix != "" {
		key = prefix + "." + key
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		e.Str(key, v.String())
	case slog.KindInt64:
		e.Int64(key, v.Int64())
	case slog.KindUint64:
		e.Uint64(key, v.Uint64())
	case slog.KindBool:
		e.Bool(key, v.Bool())
	case slog.KindDuration:
		e.Dur(key+"_ms", v.Duration()) // weir's rule: durations in milliseconds, unit in the key
	case slog.KindGroup:
		for _, g := range v.Group() {
			addAttr(e, key, g)
		}
	default:
		if err, ok := v.Any().(error); ok {
			e.AnErr(key, err)
			return
		}
		e.Str(key, v.String())
	}
}
