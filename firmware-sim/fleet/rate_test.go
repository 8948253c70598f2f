package fleet

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/internal/testbroker"
)

// TestRateHolds checks the offered load: 20 devices × 50 msg/s for 3 s must
// generate 3000 messages ±5%, and the broker must see about as many. The
// offered count comes from the scheduler (absolute due times), so a busy
// box delays messages but does not lower the rate.
func TestRateHolds(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	var mu sync.Mutex
	var snaps []Snapshot
	cfg := Config{
		Broker: b.URL, CleanSession: true, Seed: 1, Duration: 3 * time.Second,
		Groups:           []Group{{Count: 20, Rate: 50, QoS: 1}},
		ProgressInterval: 500 * time.Millisecond,
		Progress: func(s Snapshot) {
			mu.Lock()
			snaps = append(snaps, s)
			mu.Unlock()
		},
	}
	sum, err := Run(ctxT(t, 15*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const want = 20 * 50 * 3
	dev := math.Abs(float64(sum.Generated)-want) / want
	t.Logf("generated %d (%.2f%% off %d), acked %d, %.0f msgs/s, p99 %.2fms; %+v", sum.Generated, dev*100, want, sum.Acked, sum.MsgsPerSec, sum.Latency.P99, sum)
	if dev > 0.05 {
		t.Fatalf("offered %d messages, want %d ±5%%", sum.Generated, want)
	}
	// The broker is idle otherwise; nearly everything offered is acked.
	if float64(sum.Acked) < 0.9*want || sum.Failed != 0 {
		t.Fatalf("acked %d failed %d of %d offered", sum.Acked, sum.Failed, sum.Generated)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(snaps) < 3 {
		t.Fatalf("only %d progress snapshots", len(snaps))
	}
	// Windowed rate between two mid-run snapshots, from the offered count.
	a, z := snaps[1], snaps[len(snaps)-2]
	if z.Elapsed-a.Elapsed >= time.Second {
		r := float64(z.Generated-a.Generated) / (z.Elapsed - a.Elapsed).Seconds()
		t.Logf("windowed offered rate %.0f msgs/s over %v", r, z.Elapsed-a.Elapsed)
		if math.Abs(r-1000)/1000 > 0.15 {
			t.Fatalf("windowed offered rate %.0f, want 1000 ±15%% (snapshot timing noise included)", r)
		}
	}
}

func TestIntervalScheduleIsExact(t *testing.T) {
	// Pure scheduler arithmetic: jittered intervals keep the exact mean.
	d := &device{g: &group{cfg: Group{Rate: 50, Jitter: 0.3}}}
	d.schedRNG.Seed(1, 2)
	var at time.Duration
	for range 5000 {
		u := float64(d.schedRNG.Uint64()>>11)/(1<<53)*2 - 1
		at += time.Duration(float64(time.Second) / 50 * (1 + 0.3*u))
	}
	if got := at.Seconds(); math.Abs(got-100)/100 > 0.01 {
		t.Fatalf("5000 intervals at 50/s took %.2fs, want 100s ±1%%", got)
	}
}
