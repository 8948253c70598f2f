package fleet

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/internal/testbroker"
)

type idleCost struct {
	heapPerDevice  float64 // bytes
	stackPerDevice float64 // bytes
	goroutines     float64 // per device
	connectTime    time.Duration
}

// measureIdle connects n devices to a broker in a child process (so the
// broker's memory is not counted), waits until all are connected and
// reads the heap and stack growth of this process.
func measureIdle(tb testing.TB, n int) idleCost {
	url := testbroker.StartProcess(tb)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cost idleCost
	start := time.Now()
	cfg := Config{
		Broker: url, CleanSession: true, Ramp: time.Duration(n) * 200 * time.Microsecond,
		KeepAlive: time.Minute, Drain: time.Second,
		// A rate so low that no device publishes while we measure.
		Groups:           []Group{{Count: n, Rate: 1e-6, QoS: 1}},
		ProgressInterval: 100 * time.Millisecond,
		Progress: func(s Snapshot) {
			if s.Connected < int64(n) || cost.connectTime != 0 {
				return
			}
			cost.connectTime = time.Since(start)
			runtime.GC()
			runtime.ReadMemStats(&after)
			g := runtime.NumGoroutine()
			cost.heapPerDevice = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(n)
			cost.stackPerDevice = float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n)
			cost.goroutines = float64(g-g0) / float64(n)
			cancel()
		},
	}
	sum, err := Run(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if cost.connectTime == 0 {
		tb.Fatalf("only %d of %d devices connected: %+v", sum.Connects, n, sum)
	}
	return cost
}

// TestPerDeviceCost measures what an idle connected device costs the
// simulator process (paho client + store + device state) and logs it.
func TestPerDeviceCost(t *testing.T) {
	const n = 300
	c := measureIdle(t, n)
	t.Logf("%d idle devices: heap %.1f KiB + stacks %.1f KiB = %.1f KiB per device, %.1f goroutines per device; connected in %v",
		n, c.heapPerDevice/1024, c.stackPerDevice/1024, (c.heapPerDevice+c.stackPerDevice)/1024, c.goroutines, c.connectTime)
	// paho alone is ~33 KiB and ~10 goroutines per client; the simulator
	// must not add much on top (no goroutine per device).
	if per := c.heapPerDevice + c.stackPerDevice; per > 64<<10 {
		t.Fatalf("%.1f KiB per idle device, want < 64 KiB", per/1024)
	}
	if c.goroutines > 11 {
		t.Fatalf("%.1f goroutines per device, want ≤ 11 (paho's own)", c.goroutines)
	}
}

// BenchmarkFleetIdle reports per-device memory for an idle connected
// fleet. Run with -benchtime=1x:
//
//	go test ./firmware-sim/fleet -run '^$' -bench FleetIdle -benchtime=1x
func BenchmarkFleetIdle(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(itoa(n), func(b *testing.B) {
			var c idleCost
			for range b.N {
				c = measureIdle(b, n)
			}
			b.ReportMetric(c.heapPerDevice, "heapB/device")
			b.ReportMetric(c.stackPerDevice, "stackB/device")
			b.ReportMetric(c.goroutines, "goroutines/device")
			b.ReportMetric(c.connectTime.Seconds(), "connect-s")
		})
	}
}

func itoa(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return itoa(n/1000) + "k"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

// BenchmarkFleetThroughput: 100 devices publishing as fast as acks allow
// (QoS 1, one in flight each, JSON) for 3 s against a bare mochi broker
// in a child process. Reports acked msgs/s and publish→ack p99.
func BenchmarkFleetThroughput(b *testing.B) {
	url := testbroker.StartProcess(b)
	var sum Summary
	for range b.N {
		var err error
		sum, err = Run(context.Background(), Config{
			Broker: url, CleanSession: true, Duration: 3 * time.Second,
			Groups: []Group{{Count: 100, Rate: 0, QoS: 1}},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(sum.MsgsPerSec, "msgs/s")
	b.ReportMetric(sum.Latency.P99, "p99-ms")
}
