package api

import (
	"context"
	"net"
	"sync"
	"time"
)

// failureGuard slows the answers to failed authentications per remote
// address, as a login guard does: each address has a bucket of
// guardBurst failures refilled at guardRate per second; past it, each
// further failure waits for its turn (at most guardMaxDelay) before the
// refusal is sent. A guessing loop therefore gets about guardRate answers
// a second per address however many connections it opens, while a
// client with a wrong key sees its first errors at once. The map is
// bounded: when full, an arbitrary address is forgotten (an attacker with
// that many addresses is not slowed by a per-address guard anyway).
type failureGuard struct {
	rate     float64 // failures per second refilled
	burst    float64
	maxDelay time.Duration
	max      int
	now      func() time.Time

	mu    sync.Mutex
	addrs map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const (
	guardRate     = 1.0
	guardBurst    = 10
	guardMaxDelay = 5 * time.Second
	guardMaxAddrs = 4096
)

func newFailureGuard() *failureGuard {
	return &failureGuard{rate: guardRate, burst: guardBurst, maxDelay: guardMaxDelay, max: guardMaxAddrs,
		now: time.Now, addrs: map[string]*bucket{}}
}

// delay records a failure from remote (an ip:port) and returns how long
// to hold its answer.
func (g *failureGuard) delay(remote string) time.Duration {
	ip := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		ip = h
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.addrs[ip]
	if !ok {
		if len(g.addrs) >= g.max {
			for k := range g.addrs {
				delete(g.addrs, k)
				break
			}
		}
		b = &bucket{tokens: g.burst, last: now}
		g.addrs[ip] = b
	}
	b.tokens = min(g.burst, b.tokens+now.Sub(b.last).Seconds()*g.rate)
	b.last = now
	// Debt is capped, so an address that stops failing recovers within
	// maxDelay.
	floor := -g.maxDelay.Seconds() * g.rate
	b.tokens = max(b.tokens-1, floor)
	if b.tokens >= 0 {
		return 0
	}
	return min(time.Duration(-b.tokens/g.rate*float64(time.Second)), g.maxDelay)
}

// wait holds a refusal for d, or until the request or server ends.
func wait(ctx context.Context, closing <-chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-closing:
	}
}
