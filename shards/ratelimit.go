package shards

import (
	"sync"
	"sync/atomic"
	"time"
)

// burstFraction is how much of a second's allowance a shard may spend at
// once after being idle. A tenth keeps a saturated shard's stored rate
// within a few percent of its limit over any window of a few seconds, while
// still absorbing the jitter of devices that publish on the same tick.
const burstFraction = 10

// bucket is a token bucket that hands out reservations: a caller learns how
// long it must wait before its tokens are available and either waits that
// long (backpressure) or gives the reservation back (reject).
type bucket struct {
	rate   float64 // tokens per second; 0 = unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, now time.Time) bucket {
	burst := rate / burstFraction
	if burst < 1 {
		burst = 1
	}
	return bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *bucket) advance(now time.Time) {
	if now.After(b.last) {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = now
	}
}

// delay is how long n tokens take to become available, after advancing.
// A request larger than the whole burst (a 1 MiB record against a 100 KiB
// burst) may go once the bucket is full and leaves it in debt, so big
// records pass without the burst having to be as big as a record.
func (b *bucket) delay(n float64) time.Duration {
	need := min(n, b.burst)
	if b.rate == 0 || b.tokens >= need {
		return 0
	}
	return time.Duration((need - b.tokens) / b.rate * float64(time.Second))
}

// limiter enforces a shard's records/s and bytes/s together.
type limiter struct {
	mu      sync.Mutex
	records bucket
	bytes   bucket
	on      atomic.Bool // false: unlimited, reserve takes no lock
}

func newLimiter(rc RateConfig, now time.Time) *limiter {
	l := &limiter{}
	l.set(rc, now)
	return l
}

// set replaces the limits (a configuration reload). The buckets start
// full, as after an idle second: a reload never makes writers wait for
// allowance they had under the old limits.
func (l *limiter) set(rc RateConfig, now time.Time) {
	l.mu.Lock()
	l.records = newBucket(float64(rc.RecordsPerSec), now)
	l.bytes = newBucket(float64(rc.BytesPerSec.Bytes()), now)
	l.mu.Unlock()
	l.on.Store(rc.RecordsPerSec > 0 || rc.BytesPerSec.Bytes() > 0)
}

// reserve takes n records of size bytes if they can be had within maxWait
// and returns how long the caller must wait before writing. ok is false
// (and nothing is taken) when the wait would exceed maxWait.
func (l *limiter) reserve(n int, size int64, now time.Time, maxWait time.Duration) (wait time.Duration, ok bool) {
	if !l.on.Load() {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records.advance(now)
	l.bytes.advance(now)
	wait = max(l.records.delay(float64(n)), l.bytes.delay(float64(size)))
	if wait > maxWait {
		return wait, false
	}
	if l.records.rate > 0 {
		l.records.tokens -= float64(n)
	}
	if l.bytes.rate > 0 {
		l.bytes.tokens -= float64(size)
	}
	return wait, true
}
