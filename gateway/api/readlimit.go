package api

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// readLimiter enforces one shard's read limits (cfg.ReadLimits), shared by
// every reader of the shard as in Kinesis (5 GetRecords calls/s and 2 MiB/s
// per shard by default; 0 = unlimited).
//
// Both limits are token buckets holding one second of allowance. A call
// needs a call token and a positive byte balance; it may then read at most
// the byte balance (at least one record), and what it read is charged
// afterwards, possibly driving the balance negative. Capping the read by the
// balance, rather than handing out 10 MiB and throttling for 5 s as Kinesis
// does, gives readers a steady flow instead of bursts and long stalls.
type readLimiter struct {
	calls, bytes *rate.Limiter // nil = unlimited

	mu   sync.Mutex
	last time.Time // the latest admission, at which charge books the read
}

func newReadLimiter(callsPerSec int, bytesPerSec int64, now time.Time) *readLimiter {
	l := &readLimiter{last: now}
	if callsPerSec > 0 {
		l.calls = rate.NewLimiter(rate.Limit(callsPerSec), callsPerSec)
	}
	if bytesPerSec > 0 {
		// The burst is an int: cap it for 32-bit gateways.
		l.bytes = rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, math.MaxInt32)))
	}
	return l
}

// admit asks to read. countCall is false for a long-poll, which the call
// limit does not apply to (see doc.go). It returns the byte budget for this
// read (maxBytes when bytes are unlimited), or ok=false and how long until
// the call would be admitted.
func (l *readLimiter) admit(now time.Time, countCall bool, maxBytes int) (budget int, wait time.Duration, ok bool) {
	var call *rate.Reservation
	if countCall && l.calls != nil {
		call = l.calls.ReserveN(now, 1)
		if d := call.DelayFrom(now); d > 0 {
			call.CancelAt(now)
			return 0, d, false
		}
	}
	budget = maxBytes
	if l.bytes != nil {
		balance := l.bytes.TokensAt(now)
		if balance <= 0 {
			if call != nil {
				call.CancelAt(now)
			}
			// Wait until a tenth of a second's worth is back, so a woken
			// reader gets a useful batch rather than one record.
			r := float64(l.bytes.Limit())
			return 0, time.Duration((-balance + r/10) / r * float64(time.Second)), false
		}
		budget = min(budget, int(balance))
	}
	l.mu.Lock()
	if now.After(l.last) {
		l.last = now
	}
	l.mu.Unlock()
	return max(budget, 1), 0, true
}

// charge accounts the bytes a read returned, as debt when they exceed the
// balance. A reservation cannot exceed the burst, so a read larger than a
// second's allowance (one oversize record) is booked in bursts.
func (l *readLimiter) charge(n int) {
	if l.bytes == nil || n <= 0 {
		return
	}
	l.mu.Lock()
	at := l.last
	l.mu.Unlock()
	for burst := l.bytes.Burst(); n > 0; {
		c := min(n, burst)
		l.bytes.ReserveN(at, c)
		n -= c
	}
}
