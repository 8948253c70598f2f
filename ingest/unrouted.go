package ingest

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// unroutedLogInterval is the least time between two lines about unrouted
// topics: publishing to topics no route takes is also normal broker use
// (commands to devices), which must not fill the log.
const unroutedLogInterval = 10 * time.Second

// unroutedTopicsMax bounds the memory of topics already logged; past it
// the set starts over, and the rate limit still caps the lines.
const unroutedTopicsMax = 1024

// unroutedLog tells the operator once per topic that publishes to it are
// acknowledged but not stored (no route matches), at most one line per
// interval across all topics, so a misconfigured fleet cannot flood the
// log while the first occurrence of each mistake still shows.
type unroutedLog struct {
	log   zerolog.Logger
	limit *limiter
	mu    sync.Mutex
	seen  map[string]struct{}
}

func newUnroutedLog(log zerolog.Logger, every time.Duration) *unroutedLog {
	return &unroutedLog{log: log, limit: newLimiter(every), seen: map[string]struct{}{}}
}

func (u *unroutedLog) note(topic, clientID string, now time.Time) {
	u.mu.Lock()
	_, dup := u.seen[topic]
	u.mu.Unlock()
	if dup {
		return
	}
	ok, suppressed := u.limit.allow(now)
	if !ok {
		return // not marked seen: a later publish to it may still be logged
	}
	u.mu.Lock()
	if len(u.seen) >= unroutedTopicsMax {
		clear(u.seen)
	}
	u.seen[topic] = struct{}{}
	u.mu.Unlock()
	// Info, not Warn: such publishes are delivered as by any broker, and
	// only a missing route makes them a mistake.
	u.log.Info().Str("topic", topic).Str("client_id", clientID).Uint64("suppressed", suppressed).
		Msg("publish matched no route: acknowledged and delivered to subscribers, not stored (add a route, see weir check-config --route)")
}
