package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// startMochi runs an in-process bare broker for testing the load side.
func startMochi(t *testing.T) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return addr
}

func TestRunLoadCountsOnlyTheWindow(t *testing.T) {
	addr := startMochi(t)
	r, err := runLoad(context.Background(), loadSpec{Broker: "tcp://" + addr, Devices: 4, Size: 200,
		Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Acked == 0 || r.Latency.Count != r.Acked {
		t.Fatalf("acked %d, latency samples %d: want equal and > 0", r.Acked, r.Latency.Count)
	}
	if want := float64(r.Acked) / 0.4; r.MsgsPerSec != want {
		t.Errorf("msgs/s %v, want acked/duration = %v", r.MsgsPerSec, want)
	}
}

func TestRunLoadPaced(t *testing.T) {
	addr := startMochi(t)
	r, err := runLoad(context.Background(), loadSpec{Broker: "tcp://" + addr, Devices: 5, Size: 50, Rate: 50,
		Warmup: 200 * time.Millisecond, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// 5 devices × 50/s × 1 s = 250 offered; allow for a slow race-enabled run.
	if r.Acked < 150 || r.Acked > 260 {
		t.Errorf("paced run acked %d in 1s, want about 250", r.Acked)
	}
}

func TestIdleConnect(t *testing.T) {
	addr := startMochi(t)
	ic, err := dialIdle(context.Background(), addr, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	for i, c := range ic.conns {
		if c == nil {
			t.Fatalf("connection %d missing", i)
		}
	}
}

func TestConnectPacketLength(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'x'
	}
	p := connectPacket(string(long))
	// 10 bytes of variable header + 2 + 200 of payload = 212 = 0xd4 0x01.
	if p[0] != 0x10 || p[1] != 0xd4 || p[2] != 0x01 || len(p) != 3+212 {
		t.Errorf("header % x, len %d", p[:3], len(p))
	}
}

func TestQuantilesAndMedian(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := latencyOf(ds)
	if l.P50 != 500 || l.P99 != 990 || l.P999 != 999 || l.Max != 1000 {
		t.Errorf("got %+v", l)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
}

// procCPU reads this process's CPU time as the kernel counts it: it must
// grow by what a busy loop burns, as getrusage counts it.
func TestProcCPUMatchesRusage(t *testing.T) {
	p0, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	s0 := selfCPU()
	// Burn 300ms of CPU (not of the clock: the machine may be busy).
	for deadline := time.Now().Add(10 * time.Second); selfCPU()-s0 < 300*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("getrusage saw under 300ms of CPU in 10s of busy loop")
		}
	}
	p1, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	dp, ds := p1-p0, selfCPU()-s0
	// /proc counts in 10ms ticks; other goroutines of the test binary
	// add a little on both sides.
	if diff := (dp - ds).Abs(); diff > 50*time.Millisecond {
		t.Fatalf("/proc says %v, getrusage %v", dp, ds)
	}
}
