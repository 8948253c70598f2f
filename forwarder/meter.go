package forwarder

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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

func (m *meter) close() { m.up.leave() }

// client wraps an HTTP client so that every request body is read through
// the meter.
func (m *meter) client(inner aws.HTTPClient) aws.HTTPClient {
	if inner == nil {
		inner = http.DefaultClient
	}
	return meteredClient{m: m, inner: inner}
}

type meteredClient struct {
	m     *meter
	inner aws.HTTPClient
}

func (c meteredClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return c.inner.Do(req)
	}
	mb := &meteredBody{ctx: req.Context(), m: c.m, rc: req.Body}
	req.Body = mb
	resp, err := c.inner.Do(req)
	// The transport may still be reading the body once the answer is in
	// (an early error response): that no longer goes upstream.
	mb.done.Store(true)
	return resp, err
}

type meteredBody struct {
	ctx  context.Context
	m    *meter
	rc   io.ReadCloser
	done atomic.Bool
}

func (b *meteredBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.EOF
	}
	if len(p) > meterChunk {
		p = p[:meterChunk]
	}
	if err := b.m.wait(b.ctx, len(p)); err != nil {
		return 0, err
	}
	return b.rc.Read(p)
}

func (b *meteredBody) Close() error { return b.rc.Close() }
