package hist

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestBucketsAreContiguous(t *testing.T) {
	prevLo, prevW := bucketRange(0)
	for i := 1; i < nBuckets; i++ {
		lo, w := bucketRange(i)
		if lo != prevLo+prevW {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevLo+prevW)
		}
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(lo + w - 1); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo+w-1, got, i)
		}
		prevLo, prevW = lo, w
	}
}

func TestRelativeErrorBound(t *testing.T) {
	// Every value maps to a bucket whose midpoint is within 1/256 of it.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		v := int64(rng.Float64() * math.Pow(2, rng.Float64()*39))
		lo, w := bucketRange(bucketOf(v))
		mid := lo + w/2
		if v > 0 && math.Abs(float64(mid-v))/float64(v) > 1.0/256+1e-12 {
			t.Fatalf("value %d reported as %d", v, mid)
		}
	}
}

// TestAccuracyTable compares quantiles against the exact sorted values for
// several latency-like distributions and logs the table.
func TestAccuracyTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	dists := []struct {
		name string
		gen  func() int64
	}{
		{"uniform 0-10ms", func() int64 { return rng.Int64N(10_000_000) }},
		{"exponential mean 2ms", func() int64 { return int64(rng.ExpFloat64() * 2e6) }},
		{"lognormal ~1ms", func() int64 { return int64(math.Exp(rng.NormFloat64()*0.8) * 1e6) }},
		{"bimodal 300µs/40ms", func() int64 {
			if rng.IntN(100) < 97 {
				return 300_000 + rng.Int64N(50_000)
			}
			return 40_000_000 + rng.Int64N(5_000_000)
		}},
		{"small ints 0-300", func() int64 { return rng.Int64N(300) }},
	}
	qs := []float64{0.5, 0.9, 0.99, 0.999}
	t.Logf("%-22s %6s %14s %14s %9s", "distribution", "q", "exact", "histogram", "rel.err")
	for _, d := range dists {
		var h Histogram
		vals := make([]int64, 100000)
		for i := range vals {
			vals[i] = d.gen()
			h.Record(vals[i])
		}
		slices.Sort(vals)
		for _, q := range qs {
			rank := int(math.Ceil(q * float64(len(vals))))
			exact := vals[rank-1]
			got := h.Quantile(q)
			rel := 0.0
			if exact != 0 {
				rel = math.Abs(float64(got-exact)) / float64(exact)
			} else if got != 0 {
				rel = 1
			}
			t.Logf("%-22s %6.3f %14d %14d %8.4f%%", d.name, q, exact, got, rel*100)
			if rel > 0.01 {
				t.Errorf("%s q=%v: got %d, exact %d (%.3f%% off)", d.name, q, got, exact, rel*100)
			}
		}
		if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
			t.Errorf("%s: min/max %d/%d, want %d/%d", d.name, h.Min(), h.Max(), vals[0], vals[len(vals)-1])
		}
	}
}

func TestEmptyAndExtremes(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(-5)
	h.Record(1 << 50)
	if h.Min() != 0 {
		t.Fatalf("min = %d", h.Min())
	}
	if h.Max() != 1<<50 || h.Quantile(1) != 1<<50 {
		t.Fatalf("max = %d", h.Max())
	}
	if q := h.Quantile(0.99); q > h.Max() {
		t.Fatalf("quantile %d above max", q)
	}
}

func TestConcurrentRecordAndMerge(t *testing.T) {
	var a, b Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10000 {
				a.Record(int64(g*10000 + i))
			}
		}()
	}
	wg.Wait()
	if a.Count() != 80000 {
		t.Fatalf("count = %d", a.Count())
	}
	b.Record(1_000_000)
	b.Merge(&a)
	if b.Count() != 80001 || b.Max() != 1_000_000 || b.Min() != 0 {
		t.Fatalf("merged count/min/max = %d/%d/%d", b.Count(), b.Min(), b.Max())
	}
	b.Reset()
	if b.Count() != 0 || b.Max() != 0 {
		t.Fatal("reset left data")
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		v := int64(1)
		for pb.Next() {
			h.Record(v)
			v = (v*31 + 7) % 50_000_000
		}
	})
}

func ExampleHistogram() {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(int64(i) * 1000) // 1µs..1ms in ns
	}
	fmt.Println(h.Quantile(0.5), h.Quantile(0.99), h.Max())
	// Output: 500736 989184 1000000
}
