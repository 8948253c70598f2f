package shards

import (
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
)

// A saturated bucket must store its configured rate within ±10% over a 10 s
// window (issue: accuracy), whatever the burst.
func TestLimiterAccuracyOverTenSeconds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rps       int
		bps       int64
		size      int64
		wantPerS  float64
		byteBound bool
	}{
		{"records", 1000, 0, 200, 1000, false},
		{"bytes", 0, 1 << 20, 4096, float64(1<<20) / 4096, true},
		{"both/records-bind", 500, 1 << 20, 100, 500, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			l := newLimiter(RateConfig{RecordsPerSec: tc.rps, BytesPerSec: conf.ByteSize(tc.bps)}, start)
			now := start
			stored := 0
			// A producer that always wants to write and sleeps exactly as
			// long as the limiter says.
			for now.Sub(start) < 10*time.Second {
				wait, ok := l.reserve(1, tc.size, now, time.Hour)
				if !ok {
					t.Fatal("reservation refused with an hour of patience")
				}
				now = now.Add(wait)
				if now.Sub(start) < 10*time.Second {
					stored++
				}
			}
			got := float64(stored) / 10
			if got < tc.wantPerS*0.9 || got > tc.wantPerS*1.1 {
				t.Fatalf("stored %.1f/s, limit %.1f/s", got, tc.wantPerS)
			}
		})
	}
}

func TestLimiterRejectTakesNothing(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(RateConfig{RecordsPerSec: 10}, now)
	if _, ok := l.reserve(1, 1, now, 0); !ok {
		t.Fatal("first record refused")
	}
	if _, ok := l.reserve(1, 1, now, 0); ok {
		t.Fatal("second record in the same instant accepted beyond the burst of 1")
	}
	// 100 ms later exactly one more token exists: the refusals above must
	// not have consumed any.
	now = now.Add(100 * time.Millisecond)
	if _, ok := l.reserve(1, 1, now, 0); !ok {
		t.Fatal("token not restored after refusal")
	}
}

func TestLimiterOffWhenZero(t *testing.T) {
	l := newLimiter(RateConfig{}, time.Unix(0, 0))
	for i := 0; i < 100000; i++ {
		if w, ok := l.reserve(1, 1<<20, time.Unix(0, 0), 0); !ok || w != 0 {
			t.Fatal("unlimited limiter throttled")
		}
	}
}

// A record bigger than the burst must still pass once the bucket is full,
// and pay for itself before the next one.
func TestLimiterRecordLargerThanBurst(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(RateConfig{BytesPerSec: 1 << 20}, now)
	if w, ok := l.reserve(1, 1<<20, now, 0); !ok || w != 0 {
		t.Fatalf("1 MiB record on a full 1 MiB/s bucket: wait %v ok %v", w, ok)
	}
	w, ok := l.reserve(1, 1<<20, now, time.Hour)
	if !ok || w < 900*time.Millisecond || w > 1100*time.Millisecond {
		t.Fatalf("second 1 MiB record should wait about 1s, got %v", w)
	}
}
