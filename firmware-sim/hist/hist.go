package hist

import (
	"math"
	"math/bits"
	"sync/atomic"
)

const (
	subBits  = 7
	subCount = 1 << subBits // linear sub-buckets per power of two
	// Values below linearMax are counted exactly, one bucket per value.
	linearMax = 2 * subCount
	maxBits   = 40 // 2^40 ns ≈ 18 minutes: nothing slower matters for an ack
	maxExp    = maxBits - subBits - 1
	nBuckets  = subCount*maxExp + linearMax
)

// Histogram counts int64 values in log-linear buckets. The zero value is
// ready to use and safe for concurrent Record calls.
type Histogram struct {
	counts [nBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Int64
	min    atomic.Int64 // stored as value+1 so that 0 means "unset"
}

// bucketOf returns the bucket index for v >= 0.
func bucketOf(v int64) int {
	u := uint64(v)
	if u < linearMax {
		return int(u)
	}
	e := bits.Len64(u) - (subBits + 1) // >= 1
	if e > maxExp {
		return nBuckets - 1
	}
	return subCount*e + int(u>>uint(e))
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < linearMax {
		return int64(i), 1
	}
	e := i/subCount - 1
	m := int64(i%subCount + subCount)
	return m << uint(e), int64(1) << uint(e)
}

// Record adds one observation.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	h.observeExtremes(v)
}

func (h *Histogram) observeExtremes(v int64) {
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest recorded value, exact (0 when empty).
func (h *Histogram) Max() int64 { return h.max.Load() }

// Min is the smallest recorded value, exact (0 when empty).
func (h *Histogram) Min() int64 {
	m := h.min.Load()
	if m == 0 {
		return 0
	}
	return m - 1
}

// Mean is the exact arithmetic mean (0 when empty).
func (h *Histogram) Mean() float64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value at quantile q (0..1): the value of rank
// ceil(q*n) in sorted order, reported as the midpoint of its bucket and
// clamped to [Min, Max]. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	if q <= 0 {
		return h.Min()
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + w/2
			if mx := h.Max(); v > mx {
				v = mx
			}
			if mn := h.Min(); v < mn {
				v = mn
			}
			return v
		}
	}
	return h.Max()
}

// Merge adds every observation of o into h. Min and max merge exactly.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	if o.Count() > 0 {
		h.observeExtremes(o.Min())
		h.observeExtremes(o.Max())
	}
}

// Reset forgets every observation. Not safe concurrently with Record.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.total.Store(0)
	h.sum.Store(0)
	h.max.Store(0)
	h.min.Store(0)
}
