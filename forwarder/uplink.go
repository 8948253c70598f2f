package forwarder

import (
	"sync"
	"time"
)

// Uplink is the upstream budget every forwarder of a daemon shares
// (`uplink: max_bytes_per_sec`): a token bucket refilled at the uplink's
// rate, and a scheduler that gives the next send to the waiting sink of
// the highest priority, and among equal priorities to the one that has
// sent the fewest bytes, so they share the link fairly. A sink's own
// max_bytes_per_sec still caps it on top.
//
// The bucket may go into debt by one batch (so a batch larger than the
// budget still goes); nothing is granted until the debt is repaid, which
// is what makes a slow link serve the high-priority sink first: the
// low-priority one gets a grant only when no higher sink is waiting. A
// grant is at most a quarter second of the link, so a high-priority
// record waits at most that long behind a bulk batch already on the wire.
type Uplink struct {
	mu     sync.Mutex
	bucket *tokenBucket
	users  map[*uplinkUser]bool
}

// NewUplink makes the shared budget; nil when cfg sets no cap (a nil
// *Uplink grants everything).
func NewUplink(cfg UplinkConfig) *Uplink {
	rate := cfg.MaxBytesPerSec.Bytes()
	if rate <= 0 {
		return nil
	}
	return &Uplink{bucket: newTokenBucket(rate, time.Now()), users: map[*uplinkUser]bool{}}
}

// uplinkUser is one forwarder's place in the Uplink's queue. Only that
// forwarder's engine loop calls its methods.
type uplinkUser struct {
	u        *Uplink
	priority int
	wake     chan struct{} // the engine's, pinged when its turn comes
	waiting  bool
	served   float64 // bytes granted, the fairness clock among equals
}

func (u *Uplink) join(priority int, wake chan struct{}) *uplinkUser {
	if u == nil {
		return nil
	}
	h := &uplinkUser{u: u, priority: priority, wake: wake}
	u.mu.Lock()
	u.users[h] = true
	u.mu.Unlock()
	return h
}

// leave removes the user for good (its engine stopped).
func (h *uplinkUser) leave() {
	if h == nil {
		return
	}
	h.u.mu.Lock()
	delete(h.u.users, h)
	h.u.mu.Unlock()
}

// budget is the most one grant should carry.
func (h *uplinkUser) budget() int {
	if h == nil {
		return maxBatchBytes
	}
	return int(max(1, h.u.bucket.rate/4))
}

// acquire asks to send now. If the answer is no, it returns when to ask
// again; the user is also woken earlier when its turn comes.
func (h *uplinkUser) acquire(now time.Time) (bool, time.Time) {
	if h == nil {
		return true, time.Time{}
	}
	u := h.u
	u.mu.Lock()
	defer u.mu.Unlock()
	if !h.waiting {
		h.waiting = true
		// A sink that was idle does not get to catch up on what it did not
		// use: it joins at the level of those already waiting.
		for o := range u.users {
			if o != h && o.waiting && o.priority == h.priority && o.served > h.served {
				h.served = o.served
			}
		}
	}
	if w := u.bucket.wait(now); w > 0 {
		return false, now.Add(w)
	}
	var best *uplinkUser
	for o := range u.users {
		if o.waiting && (best == nil || o.priority > best.priority ||
			(o.priority == best.priority && o.served < best.served)) {
			best = o
		}
	}
	if best == h || best == nil { // nil: h has left; do not hold up a sink stopping
		return true, time.Time{}
	}
	select {
	case best.wake <- struct{}{}:
	default:
	}
	// best should take its turn at once; look again soon in case it finds
	// nothing to send after all.
	return false, now.Add(20 * time.Millisecond)
}

// take spends n bytes of a grant.
func (h *uplinkUser) take(n int, now time.Time) {
	if h == nil {
		return
	}
	h.u.mu.Lock()
	h.u.bucket.take(n, now)
	h.served += float64(n)
	h.waiting = false
	h.u.mu.Unlock()
}

// idle says the user has nothing to send now, so it does not hold up the
// sinks below it.
func (h *uplinkUser) idle() {
	if h == nil || !h.waiting {
		return
	}
	h.u.mu.Lock()
	h.waiting = false
	h.u.mu.Unlock()
}
