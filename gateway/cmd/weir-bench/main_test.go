package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// startMochi runs an in-process bare broker for testing the load side;
// with a TLS config it listens with TLS.
func startMochi(t *testing.T, tc ...*tls.Config) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	lc := listeners.Config{ID: "t", Address: addr}
	if len(tc) > 0 {
		lc.TLSConfig = tc[0]
	}
	if err := srv.AddListener(listeners.NewTCP(lc)); err != nil {
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
	ic, err := dialIdle(context.Background(), addr, 50, nil)
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

// mtlsMochi is a bare broker that requires client certificates from p.
func mtlsMochi(t *testing.T, p *benchPKI) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return startMochi(t, &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
}

// The fleet, the idle devices and the connect loop work over mTLS, each
// device with its own certificate; without one the broker refuses them.
func TestMTLSFleet(t *testing.T) {
	p, err := newBenchPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := mtlsMochi(t, p)
	withCert := func(id string) (*tls.Config, error) { return p.clientTLS(id, true) }
	r, err := runLoad(context.Background(), loadSpec{Broker: "ssl://" + addr, Devices: 3, Size: 200, TLS: withCert,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond})
	if err != nil || r.Acked == 0 {
		t.Fatalf("mTLS load: acked %d, %v", r.Acked, err)
	}
	ic, err := dialIdle(context.Background(), addr, 5, withCert)
	if err != nil {
		t.Fatalf("mTLS idle devices: %v", err)
	}
	ic.Close()
	h, err := runHandshakes(context.Background(), addr, 2, 300*time.Millisecond, os.Getpid(), withCert)
	if err != nil || h.Connects == 0 {
		t.Fatalf("mTLS connect loop: %+v, %v", h, err)
	}
	noCert := func(id string) (*tls.Config, error) { return p.clientTLS(id, false) }
	if _, err := dialIdle(context.Background(), addr, 1, noCert); err == nil {
		t.Error("a device without a client certificate connected to an mTLS broker")
	}
}

func TestTLSListenerYAML(t *testing.T) {
	p := &benchPKI{caFile: "/ca", certFile: "/crt", keyFile: "/key"}
	got := weirConfig("/d", "127.0.0.1:1", tlsListenerYAML("127.0.0.1:2", p, true), &benchEnv{fsync: "always", shards: 4})
	for _, want := range []string{"  listen: 127.0.0.1:1\n  listeners:\n    - listen: 127.0.0.1:2\n      tls:\n        cert_file: \"/crt\"",
		"client_ca_file: \"/ca\"", "require_client_cert: true", "identity_from: cn\ndurability:"} {
		if !strings.Contains(got, want) {
			t.Errorf("weir config lacks %q:\n%s", want, got)
		}
	}
}

// The Mosquitto target of tls-idle takes the same devices as weir's TLS
// listener: with mTLS each presents its own certificate, and a device
// without one is refused.
func TestMosquittoTLSTarget(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatalf("mosquitto is needed (scripts/install-deps.sh installs it): %v", err)
	}
	p, err := newBenchPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := &benchEnv{mosquittoBin: bin, tmp: t.TempDir(), pki: p, mtls: true}
	tg, err := startTarget(env, kindMosquittoTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.stop()
	ic, err := dialIdle(context.Background(), tg.fleetAddr(), 3, tg.deviceTLS(env))
	if err != nil {
		t.Fatalf("mTLS devices to mosquitto: %v\n%s", err, tg.log())
	}
	ic.Close()
	noCert := func(id string) (*tls.Config, error) { return p.clientTLS(id, false) }
	if c, err := dialDevice(context.Background(), tg.fleetAddr(), "nocert", noCert); err == nil {
		c.Close()
		t.Error("a device without a client certificate connected to mosquitto with require_certificate")
	}
}
