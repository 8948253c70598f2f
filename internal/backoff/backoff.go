package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Exp computes delays; it holds no state of its own, so one Exp serves
// many retriers that count their own attempts.
type Exp struct {
	Base, Cap time.Duration
	// Rand draws the jitter; nil uses the global source. A seeded one
	// makes a test repeatable; it must then be used by one goroutine.
	Rand *rand.Rand
}

// Ceiling is the longest delay of attempt n (0-based): Base·2^n, at most Cap.
func (b Exp) Ceiling(attempt int) time.Duration {
	if attempt > 30 {
		return b.Cap
	}
	d := b.Base << attempt
	if d <= 0 || d > b.Cap {
		d = b.Cap
	}
	return d
}

// Delay draws attempt n's delay, uniformly in [0, Ceiling(n)].
func (b Exp) Delay(attempt int) time.Duration {
	n := int64(b.Ceiling(attempt)) + 1
	if b.Rand != nil {
		return time.Duration(b.Rand.Int64N(n))
	}
	return time.Duration(rand.Int64N(n))
}

// Retry is an Exp with its attempt count, for a loop that sleeps between
// tries.
type Retry struct {
	Exp
	attempt int
}

// Wait sleeps for the next attempt's delay, or until ctx is done.
func (r *Retry) Wait(ctx context.Context) error {
	d := r.Delay(r.attempt)
	r.attempt++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reset starts the count again after a success.
func (r *Retry) Reset() { r.attempt = 0 }
