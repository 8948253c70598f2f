package forwarder

import (
	"context"
	"sync"
	"time"
)

// meterChunk is how many bytes of a self-metered upload go per grant: small
// enough that a higher-priority sink waits at most a chunk's time on a
// slow uplink.
const meterChunk = 16 << 10

// meter holds back the uploads of a self-metered sink (limits.selfMetered:
// objects of megabytes, which the engine cannot take from the token
// buckets whole) chunk by chunk, against the sink's own max_bytes_per_sec
// and the shared uplink at the sink's priority. It is safe for concurrent
// use by the sink's requests.
type meter struct {
	mu     sync.Mutex
	bucket *tokenBucket
	up     *uplinkUser
	wake   chan struct{}
}

func newMeter(cfg Config, up *Uplink) *meter {
	m := &meter{bucket: newTokenBucket(cfg.MaxBytesPerSec.Bytes(), time.Now()), wake: make(chan struct{}, 1)}
	m.up = up.join(cfg.Priority, m.wake)
	return m
}

// wait blocks until n more bytes may go (n at most about meterChunk).
func (m *meter) wait(ctx context.Context, n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		now := time.Now()
		var at time.Time
		if w := m.bucket.wait(now); w > 0 {
			m.up.idle()
			at = now.Add(w)
		} else if ok, t := m.up.acquire(now); ok {
			m.bucket.take(n, now)
			m.up.take(n, now)
			return nil
		} else {
			at = t
		}
		timer := time.NewTimer(time.Until(at))
		select {
		case <-timer.C:
		case <-m.wake:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			m.up.idle()
			return ctx.Err()
		}
	}
}

// waitBytes blocks until n bytes may go, taking them a chunk at a time
// so that sinks of higher priority get their turns in between.
func (m *meter) waitBytes(ctx context.Context, n int) error {
	for n > 0 {
		c := min(n, meterChunk)
		if err := m.wait(ctx, c); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

func (m *meter) close() { m.up.leave() }
