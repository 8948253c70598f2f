package api

import (
	"sync"
	"time"
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
	mu           sync.Mutex
	callRate     float64
	byteRate     float64
	calls, bytes float64
	last         time.Time
}

func newReadLimiter(callsPerSec int, bytesPerSec int64, now time.Time) *readLimiter {
	return &readLimiter{
		callRate: float64(callsPerSec), byteRate: float64(bytesPerSec),
		calls: float64(callsPerSec), bytes: float64(bytesPerSec), last: now,
	}
}

func (l *readLimiter) refillLocked(now time.Time) {
	if !now.After(l.last) {
		return
	}
	dt := now.Sub(l.last).Seconds()
	l.last = now
	if l.callRate > 0 {
		l.calls = min(l.callRate, l.calls+dt*l.callRate)
	}
	if l.byteRate > 0 {
		l.bytes = min(l.byteRate, l.bytes+dt*l.byteRate)
	}
}

// admit asks to read. countCall is false for a long-poll, which the call
// limit does not apply to (see doc.go). It returns the byte budget for this
// read (maxBytes when bytes are unlimited), or ok=false and how long until
// the call would be admitted.
func (l *readLimiter) admit(now time.Time, countCall bool, maxBytes int) (budget int, wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refillLocked(now)
	if countCall && l.callRate > 0 && l.calls < 1 {
		return 0, time.Duration((1 - l.calls) / l.callRate * float64(time.Second)), false
	}
	budget = maxBytes
	if l.byteRate > 0 {
		if l.bytes <= 0 {
			// Wait until a tenth of a second's worth is back, so a woken
			// reader gets a useful batch rather than one record.
			need := -l.bytes + l.byteRate/10
			return 0, time.Duration(need / l.byteRate * float64(time.Second)), false
		}
		budget = min(budget, int(l.bytes))
	}
	if countCall && l.callRate > 0 {
		l.calls--
	}
	return max(budget, 1), 0, true
}

// charge accounts the bytes a read returned.
func (l *readLimiter) charge(n int) {
	if l.byteRate == 0 || n == 0 {
		return
	}
	l.mu.Lock()
	l.bytes -= float64(n)
	l.mu.Unlock()
}
