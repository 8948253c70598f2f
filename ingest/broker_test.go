package ingest

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

func TestAnonymousOnlyOnLoopback(t *testing.T) {
	cases := []struct {
		listen string
		allow  bool
		auth   PasswordChecker
		ok     bool
	}{
		{"127.0.0.1:0", false, nil, true},
		{"127.0.0.2:1883", false, nil, true},
		{"[::1]:1883", false, nil, true},
		{"localhost:1883", false, nil, true},
		{"0.0.0.0:1883", false, nil, false},
		{":1883", false, nil, false},
		{"[::]:1883", false, nil, false},
		{"192.168.1.10:1883", false, nil, false},
		{"gateway.local:1883", false, nil, false},
		{"0.0.0.0:1883", true, nil, true},
		{"0.0.0.0:1883", false, fakePasswords{}, true},
	}
	for _, c := range cases {
		cfg := testConfig()
		cfg.Listen, cfg.AllowAnonymous = c.listen, c.allow
		b, err := New(cfg, defaultRoutes, &fakeSink{}, Options{Logger: zerolog.Nop(), Passwords: c.auth})
		if c.ok {
			if err != nil {
				t.Errorf("%s allow=%v auth=%v: %v", c.listen, c.allow, c.auth != nil, err)
				continue
			}
			if err := b.Close(context.Background()); err != nil {
				t.Errorf("Close of an unstarted broker: %v", err)
			}
			continue
		}
		if !errors.Is(err, ErrAnonymousNotAllowed) {
			t.Errorf("%s: err = %v, want ErrAnonymousNotAllowed", c.listen, err)
		}
	}
}

// The per-connection check holds the local-only rule even where New's
// static check could be wrong.
func TestAuthHookLocalOnly(t *testing.T) {
	h := &authHook{}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1883}
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1883}
	if !isLoopbackAddr(local) || isLoopbackAddr(remote) || isLoopbackAddr(nil) {
		t.Fatal("isLoopbackAddr")
	}
	// A real connection over loopback is accepted.
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{})
	if _, ack := dialRaw(t, b.Addr(), "c", 5); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK reason 0x%02x", ack.ReasonCode)
	}
	if h.OnACLCheck(nil, "any/topic", true) != true {
		t.Error("ACL must allow (no per-topic permissions yet)")
	}
}

func TestInvalidConfigRejected(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPendingWrites = -1
	if _, err := New(cfg, defaultRoutes, &fakeSink{}, Options{Logger: zerolog.Nop()}); err == nil {
		t.Error("negative max_pending_writes accepted")
	}
	if _, err := New(testConfig(), []Route{{Filter: "a/#/b", Stream: "s"}}, &fakeSink{}, Options{Logger: zerolog.Nop()}); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("bad route: %v", err)
	}
	if _, err := New(testConfig(), defaultRoutes, nil, Options{Logger: zerolog.Nop()}); err == nil {
		t.Error("nil sink accepted")
	}
}

func TestStartTwiceAndAddr(t *testing.T) {
	b, err := New(testConfig(), defaultRoutes, &fakeSink{}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if b.Addr() != nil {
		t.Error("Addr before Start is not nil")
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if a, ok := b.Addr().(*net.TCPAddr); !ok || a.Port == 0 {
		t.Errorf("Addr = %v, want the bound port", b.Addr())
	}
	if err := b.Start(); !errors.Is(err, ErrBrokerState) {
		t.Errorf("second Start: %v", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); !errors.Is(err, ErrBrokerState) {
		t.Errorf("Start after Close: %v", err)
	}
}

func TestStartReportsBindError(t *testing.T) {
	first := startBroker(t, &fakeSink{}, brokerOpts{})
	cfg := testConfig()
	cfg.Listen = first.Addr().String()
	b, err := New(cfg, defaultRoutes, &fakeSink{}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil {
		t.Error("Start on a port in use succeeded")
	}
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("Close after failed Start: %v", err)
	}
}

func TestConnectDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) { c.ConnectTimeout = conf.Duration(timeout) }})

	silent, silentStart := dialAt(t, b.Addr())
	partial, partialStart := dialAt(t, b.Addr())
	// Half a CONNECT: fixed header promising 40 bytes, then nothing.
	if _, err := partial.Write([]byte{0x10, 40, 0, 4, 'M', 'Q'}); err != nil {
		t.Fatal(err)
	}
	// A client that completes CONNECT with keepalive 60 must outlive the
	// connect timeout: mochi's keepalive deadline replaces it.
	idle, _ := dialRaw(t, b.Addr(), "idle", 4, func(pk *packets.Packet) { pk.Connect.Keepalive = 60 })
	expectDropped(t, "silent", silent, silentStart, timeout)
	expectDropped(t, "partial CONNECT", partial, partialStart, timeout)
	waitFor(t, "pre-CONNECT connections to be dropped", func() bool { return b.Stats().Connections == 1 })
	time.Sleep(timeout) // well past the connect deadline for idle
	idle.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	idle.expect(packets.Pingresp, 5*time.Second)
}

func TestOversizePacketDisconnects(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{cfg: func(c *Config) { c.MaxPacketSize = conf.KiB }})
	for _, version := range []byte{4, 5} {
		c, ack := dialRaw(t, b.Addr(), "big", version)
		if version == 5 && ack.Properties.MaximumPacketSize != 1024 {
			t.Errorf("CONNACK maximum packet size %d, want 1024", ack.Properties.MaximumPacketSize)
		}
		c.publish("devices/big/telemetry", 1, 1, make([]byte, 2048))
		c.expectClosed(5 * time.Second)
	}
	// Just under the limit is fine, and the broker still serves.
	c, _ := dialRaw(t, b.Addr(), "ok", 5)
	c.publish("devices/ok/telemetry", 1, 1, make([]byte, 900))
	if ack := c.expect(packets.Puback, 5*time.Second); ack.ReasonCode != 0 {
		t.Errorf("reason 0x%02x", ack.ReasonCode)
	}
	if n := len(sink.stored()); n != 1 {
		t.Errorf("stored %d, want 1", n)
	}
}

// The derived packet limit follows the largest record size.
func TestPacketSizeDerivedFromRecordSize(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{maxRec: 4096})
	_, ack := dialRaw(t, b.Addr(), "c", 5)
	if got, want := ack.Properties.MaximumPacketSize, uint32(4096+64*1024); got != want {
		t.Errorf("maximum packet size %d, want %d", got, want)
	}
}

func TestMalformedPackets(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{})
	connect5 := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 30, 0, 0, 0}
	connect4 := []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 0}
	cases := map[string][]byte{
		"publish before connect":  {0x30, 3, 0, 1, 'a'},
		"garbage":                 {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"bad protocol name":       {0x10, 12, 0, 4, 'X', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 0},
		"bad protocol version":    {0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 9, 2, 0, 30, 0, 0},
		"length varint too long":  append(connect4, 0x30, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"publish qos 3":           append(connect4, 0x36, 5, 0, 1, 'a', 0, 1),
		"publish topic too short": append(connect4, 0x30, 2, 0, 9),
		"publish wildcard topic":  append(connect5, 0x32, 8, 0, 3, 'a', '/', '#', 0, 1, 0),
		"publish qos1 no id":      append(connect5, 0x32, 6, 0, 3, 'a', '/', 'b', 0),
		"second connect":          append(connect4, connect4...),
		"truncated then close":    append(connect5, 0x32, 50, 0, 3),
		"bad properties length":   append(connect5, 0x32, 9, 0, 3, 'a', '/', 'b', 0, 1, 0xff, 0xff),
	}
	for name, raw := range cases {
		conn, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "truncated then close" {
			_ = conn.Close()
			continue
		}
		c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 5, id: name}
		deadline := time.Now().Add(5 * time.Second)
		for {
			pk, err := c.read(time.Until(deadline))
			if isClosed(err) {
				break
			}
			if err != nil {
				t.Errorf("%s: connection not closed: %v", name, err)
				break
			}
			if pk.FixedHeader.Type == packets.Puback && pk.ReasonCode < 0x80 {
				t.Errorf("%s: malformed publish acknowledged", name)
			}
		}
		_ = conn.Close()
	}
	// The broker survived and still stores.
	c, _ := dialRaw(t, b.Addr(), "after", 4)
	c.publish("devices/after/telemetry", 1, 1, []byte("ok"))
	c.expect(packets.Puback, 5*time.Second)
	if got := sink.stored(); len(got) != 1 || got[0].rec.ClientID != "after" {
		t.Errorf("stored %+v, want only the valid publish", got)
	}
}

// Close disconnects clients, cancels the context of a write in flight, and
// returns only after that write has returned, so the sink can be closed
// right after.
func TestCloseWaitsForPublishInFlight(t *testing.T) {
	entered := make(chan struct{})
	var returned atomic.Bool
	sink := &fakeSink{fn: func(ctx context.Context, _ string, _ *shards.Record, _ shards.AppendOptions) error {
		close(entered)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // a commit finishing
		returned.Store(true)
		return ctx.Err()
	}}
	b, err := New(testConfig(), defaultRoutes, sink, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	pre, err := net.Dial("tcp", b.Addr().String()) // never sends CONNECT
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	c, _ := dialRaw(t, b.Addr(), "d", 5)
	c.publish("devices/d/telemetry", 1, 1, []byte("x"))
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !returned.Load() {
		t.Error("Close returned while a publish hook was still in the sink")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Close took %v (a pre-CONNECT connection must not hold it for connect_timeout)", el)
	}
	// The client saw DISCONNECT 0x8B and no PUBACK.
	if pk := c.expect(packets.Disconnect, 2*time.Second); pk.ReasonCode != packets.ErrServerShuttingDown.Code {
		t.Errorf("DISCONNECT reason 0x%02x, want 0x8b", pk.ReasonCode)
	}
	c.expectClosed(2 * time.Second)
	if _, err := pre.Read(make([]byte, 1)); err == nil {
		t.Error("pre-CONNECT connection still open after Close")
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A sink that ignores cancellation cannot hold Close past its context.
func TestCloseBoundedByContext(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	sink := &fakeSink{fn: func(context.Context, string, *shards.Record, shards.AppendOptions) error {
		close(entered)
		<-release
		return nil
	}}
	b, err := New(testConfig(), defaultRoutes, sink, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	c, _ := dialRaw(t, b.Addr(), "d", 4)
	c.publish("devices/d/telemetry", 1, 1, []byte("x"))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	close(release)
	// Let the hook and mochi finish before goleak looks.
	waitFor(t, "connections to end", func() bool { return b.listener.wait(context.Background()) == nil })
	time.Sleep(50 * time.Millisecond)
}

// A session takeover (same client id) stops the old connection, which
// cancels the context its blocked write was given.
func TestTakeoverCancelsWrite(t *testing.T) {
	entered := make(chan struct{}, 1)
	cancelled := make(chan struct{})
	sink := &fakeSink{fn: func(ctx context.Context, _ string, rec *shards.Record, _ shards.AppendOptions) error {
		if string(rec.Data) != "first" {
			return nil
		}
		entered <- struct{}{}
		select {
		case <-ctx.Done():
			close(cancelled)
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("not cancelled")
		}
	}}
	b := startBroker(t, sink, brokerOpts{})
	old, _ := dialRaw(t, b.Addr(), "same", 5)
	old.publish("devices/same/telemetry", 1, 1, []byte("first"))
	<-entered
	nc, _ := dialRaw(t, b.Addr(), "same", 5)
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("the old connection's write was not cancelled by the takeover")
	}
	old.expectClosed(5 * time.Second)
	nc.publish("devices/same/telemetry", 1, 1, []byte("second"))
	nc.expect(packets.Puback, 5*time.Second)
}

// A subscriber that stopped reading holds mochi's client lock in a blocked
// write; shutdown must still finish promptly.
func TestCloseWithStuckSubscriber(t *testing.T) {
	b, err := New(testConfig(), defaultRoutes, &fakeSink{}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	stuck, _ := dialRaw(t, b.Addr(), "stuck", 5, func(pk *packets.Packet) { pk.Connect.Keepalive = 600 })
	stuck.subscribe("#", 0)
	pub, _ := dialRaw(t, b.Addr(), "pub", 5)
	payload := make([]byte, 60<<10)
	for range 600 { // 36 MB: more than the loopback socket buffers hold
		pub.publish("bulk", 0, 0, payload)
	}
	pub.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	pub.expect(packets.Pingresp, 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Close took %v with a stuck subscriber", el)
	}
}
