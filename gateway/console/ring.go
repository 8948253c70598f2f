package console

import "sync"

// Sample is one point of every chart on the overview.
type Sample struct {
	T         int64   `json:"t"`         // unix milliseconds
	Msgs      float64 `json:"msgs"`      // MQTT publishes received per second
	Records   float64 `json:"records"`   // records appended per second (MQTT and PutRecord[s])
	Bytes     float64 `json:"bytes"`     // log bytes per second (estimated, see sampler.go)
	Refused   float64 `json:"refused"`   // publishes refused per second
	Conns     int     `json:"conns"`     // MQTT connections open
	DiskUsed  int64   `json:"disk_used"` // bytes of the streams' logs
	DiskFree  int64   `json:"disk_free"` // bytes free on the data directory's file system
	FwdLag    int64   `json:"fwd_lag"`   // records not yet upstream, all forwarders
	FwdLagSec float64 `json:"fwd_lag_s"` // age of the oldest of them
}

// ring keeps the last len(buf) samples. Its memory is fixed at New: 720
// samples (one hour at 5 s) of 80 bytes are 57.6 KB, whatever the load.
type ring struct {
	mu   sync.Mutex
	buf  []Sample
	next int // where the next sample goes
	n    int // samples held, ≤ len(buf)
}

func newRing(size int) *ring { return &ring{buf: make([]Sample, size)} }

func (r *ring) add(s Sample) {
	r.mu.Lock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

// all returns the samples held, oldest first.
func (r *ring) all() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Sample, 0, r.n)
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}
