package ingest

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// Login slow-down: each remote address may fail burst logins freely; after
// that its attempts are spaced at rate per second, waiting before the
// password is checked, so a guessing loop cannot keep the CPU busy hashing
// (an argon2id check costs tens of milliseconds). An attempt that would
// have to wait longer than maxWait is refused after maxWait without being
// checked, so many parallel connections from one address do not pile up
// hashing work either.
const (
	loginBurst     = 5
	loginRate      = 1.0 // attempts per second once the burst is spent
	loginMaxWait   = 5 * time.Second
	loginAddresses = 4096 // addresses remembered; the least recent goes first
)

// loginGuard keeps a token bucket per remote address (an IPv6 client by
// its /64, which one host usually owns whole). Only addresses that failed
// have a bucket, so a fleet logging in correctly costs nothing here.
type loginGuard struct {
	burst   float64
	rate    float64
	maxWait time.Duration
	max     int
	now     func() time.Time
	// wait blocks the connection's own goroutine for d, or until the
	// connection closes.
	wait func(tc *trackedConn, d time.Duration)

	mu    sync.Mutex
	addrs map[netip.Addr]*list.Element // of *loginBucket
	lru   list.List                    // front = most recent
}

type loginBucket struct {
	addr   netip.Addr
	tokens float64
	last   time.Time
}

func newLoginGuard(connectTimeout time.Duration) *loginGuard {
	return &loginGuard{
		burst: loginBurst,
		rate:  loginRate,
		// The wait comes out of the connect deadline; leave room for
		// the rest of the login.
		maxWait: min(loginMaxWait, connectTimeout/2),
		max:     loginAddresses,
		now:     time.Now,
		wait:    waitOnConn,
		addrs:   make(map[netip.Addr]*list.Element),
	}
}

func waitOnConn(tc *trackedConn, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-tc.context().Done():
	}
}

func (g *loginGuard) sleep(tc *trackedConn, d time.Duration) { g.wait(tc, d) }

func guardKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}

// bucket returns addr's bucket refilled to now, creating it if create.
// g.mu is held.
func (g *loginGuard) bucket(addr netip.Addr, now time.Time, create bool) *loginBucket {
	key := guardKey(addr)
	if e, ok := g.addrs[key]; ok {
		g.lru.MoveToFront(e)
		b := e.Value.(*loginBucket)
		if dt := now.Sub(b.last); dt > 0 {
			b.tokens = min(g.burst, b.tokens+dt.Seconds()*g.rate)
			b.last = now
		}
		return b
	}
	if !create {
		return nil
	}
	if g.lru.Len() >= g.max {
		old := g.lru.Back()
		g.lru.Remove(old)
		delete(g.addrs, old.Value.(*loginBucket).addr)
	}
	b := &loginBucket{addr: key, tokens: g.burst, last: now}
	g.addrs[key] = g.lru.PushFront(b)
	return b
}

// admit is called before a login is checked. It returns how long the
// attempt must wait first, and false if it is refused unchecked (it would
// have waited longer than maxWait; the wait returned is then maxWait, so
// that refusal is not faster than a check either). A wait > 0 means the
// attempt has been charged already; failed must not charge it again.
func (g *loginGuard) admit(addr netip.Addr) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	b := g.bucket(addr, now, false)
	if b == nil || b.tokens >= 1 {
		return 0, true
	}
	b.tokens--
	wait := time.Duration(-b.tokens / g.rate * float64(time.Second))
	if wait > g.maxWait {
		b.tokens++
		return g.maxWait, false
	}
	return wait, true
}

// failed charges a failed login to its address.
func (g *loginGuard) failed(addr netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bucket(addr, g.now(), true).tokens--
}

// size is the number of addresses remembered.
func (g *loginGuard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lru.Len()
}
