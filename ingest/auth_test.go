package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
)

// dialTLS opens a TLS connection and completes the handshake.
func dialTLS(t testing.TB, addr net.Addr, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr.String(), cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// connectTLS is dialRaw over TLS.
func connectTLS(t testing.TB, addr net.Addr, cfg *tls.Config, id string, version byte, mod ...func(*packets.Packet)) (*rawClient, packets.Packet) {
	t.Helper()
	c, err := dialTLS(t, addr, cfg)
	if err != nil {
		t.Fatalf("%s: TLS dial: %v", id, err)
	}
	return connectRaw(t, c, id, version, mod...)
}

func withLogin(user, password string) func(*packets.Packet) {
	return func(pk *packets.Packet) {
		pk.Connect.Username, pk.Connect.UsernameFlag = []byte(user), true
		pk.Connect.Password, pk.Connect.PasswordFlag = []byte(password), true
	}
}

// lenientGuard never slows a login: tests that fail logins on purpose
// would otherwise meet the slow-down.
func lenientGuard() *loginGuard {
	g := newLoginGuard(10 * time.Second)
	g.burst = 1e9
	return g
}

func authOpts(pw PasswordChecker, acl Authorizer, idMatch string) func(*Options) {
	return func(o *Options) {
		o.Passwords, o.ACL, o.ClientIDMustMatch = pw, acl, idMatch
		o.guard = lenientGuard()
	}
}

func tlsListenerAddr(b *Broker) net.Addr { return b.ListenerAddrs()[1] }

func TestTLSServerCertificate(t *testing.T) {
	ca := newTestCA(t)
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{cfg: func(c *Config) {
		c.Listeners = []ListenerConfig{ca.tlsListener(false, false, "")}
	}})
	addr := tlsListenerAddr(b)

	c, ack := connectTLS(t, addr, ca.clientTLS(), "dev-tls", 5)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
	}
	c.publish("devices/d1/telemetry", 1, 1, []byte("over tls"))
	if pk := c.expect(packets.Puback, 5*time.Second); pk.ReasonCode != 0 {
		t.Fatalf("PUBACK 0x%02x", pk.ReasonCode)
	}

	// A real MQTT 3.1.1 device library over TLS.
	opts := paho.NewClientOptions().
		AddBroker("ssl://" + addr.String()).
		SetClientID("paho-tls").
		SetTLSConfig(ca.clientTLS()).
		SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second)
	pc := paho.NewClient(opts)
	if tok := pc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	tok := pc.Publish("devices/d2/telemetry", 1, false, []byte("paho over tls"))
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho publish: %v", tok.Error())
	}
	pc.Disconnect(100)
	got := sink.stored()
	if len(got) != 2 || got[0].rec.Key != "d1" || got[1].rec.Key != "d2" {
		t.Fatalf("stored %+v", got)
	}

	// A client that does not trust the server's CA, or offers only TLS 1.1,
	// does not get through the handshake.
	if _, err := dialTLS(t, addr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"}); err == nil {
		t.Error("handshake with an untrusted server certificate succeeded")
	}
	old := ca.clientTLS()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := dialTLS(t, addr, old); err == nil {
		t.Error("TLS 1.1 handshake succeeded")
	}
}

func TestMutualTLSIdentity(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.client("dev-cn", "dev.dns.example", "spiffe://weir/dev-uri")
	for _, tc := range []struct {
		from, want string
		empty      tls.Certificate // lacks the field
	}{
		{IdentityFromCN, "dev-cn", ca.client("", "x.example", "")},
		{IdentityFromSANDNS, "dev.dns.example", ca.client("only-cn", "", "")},
		{IdentityFromSANURI, "spiffe://weir/dev-uri", ca.client("only-cn", "d.example", "")},
	} {
		t.Run(tc.from, func(t *testing.T) {
			sink := &fakeSink{}
			b := startBroker(t, sink, brokerOpts{
				cfg: func(c *Config) {
					c.Listeners = []ListenerConfig{ca.tlsListener(true, true, tc.from)}
				},
				routes: []Route{{Filter: "devices/#", Stream: "s", PartitionKey: "{identity}"}},
				opts:   authOpts(nil, nil, ""),
			})
			addr := tlsListenerAddr(b)
			// The topic claims another device; the key is who sent it.
			c, ack := connectTLS(t, addr, ca.clientTLS(cert), "cid-1", 5)
			if ack.ReasonCode != 0 {
				t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
			}
			c.publish("devices/victim/telemetry", 1, 1, []byte("m"))
			c.expect(packets.Puback, 5*time.Second)
			if got := sink.stored(); len(got) != 1 || got[0].rec.Key != tc.want || got[0].rec.ClientID != "cid-1" {
				t.Fatalf("stored %+v, want key %q", got, tc.want)
			}

			// A verified certificate without the chosen field has no
			// identity: refused, 0x87 for MQTT 5, 5 for 3.1.1.
			if _, ack := connectTLS(t, addr, ca.clientTLS(tc.empty), "cid-2", 5); ack.ReasonCode != packets.ErrNotAuthorized.Code {
				t.Errorf("MQTT 5 CONNACK 0x%02x, want 0x87", ack.ReasonCode)
			}
			if _, ack := connectTLS(t, addr, ca.clientTLS(tc.empty), "cid-3", 4); ack.ReasonCode != 5 {
				t.Errorf("MQTT 3.1.1 CONNACK %d, want 5", ack.ReasonCode)
			}
			if n := b.Stats().LoginFailures.CertIdentity; n != 2 {
				t.Errorf("cert_identity failures = %d, want 2", n)
			}
		})
	}
}

func TestRequireClientCert(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	for _, require := range []bool{true, false} {
		sink := &fakeSink{}
		b := startBroker(t, sink, brokerOpts{
			cfg: func(c *Config) {
				c.Listeners = []ListenerConfig{ca.tlsListener(true, require, "")}
			},
			routes: []Route{{Filter: "devices/#", Stream: "s", PartitionKey: "{identity}"}},
		})
		addr := tlsListenerAddr(b)
		// A certificate from another CA is never accepted.
		for _, cfg := range []*tls.Config{ca.clientTLS(other.client("intruder", "", ""))} {
			assertNoSession(t, addr, cfg)
		}
		if require {
			assertNoSession(t, addr, ca.clientTLS())
			continue
		}
		// Without require_client_cert a client without a certificate is
		// anonymous (allowed here: loopback, no password file) and has
		// no {identity} to key its records with.
		c, ack := connectTLS(t, addr, ca.clientTLS(), "anon", 5)
		if ack.ReasonCode != 0 {
			t.Fatalf("anonymous CONNACK 0x%02x", ack.ReasonCode)
		}
		c.publish("devices/a/telemetry", 1, 1, []byte("m"))
		if pk := c.expect(packets.Puback, 5*time.Second); pk.ReasonCode != packets.ErrPayloadFormatInvalid.Code {
			t.Errorf("anonymous {identity} publish: PUBACK 0x%02x, want 0x99", pk.ReasonCode)
		}
		if len(sink.stored()) != 0 {
			t.Errorf("stored %+v", sink.stored())
		}
	}
}

// assertNoSession checks that a TLS client gets no CONNACK: the server
// ends the handshake (with TLS 1.3 the client learns it at its first read).
func assertNoSession(t *testing.T, addr net.Addr, cfg *tls.Config) {
	t.Helper()
	conn, err := dialTLS(t, addr, cfg)
	if err != nil {
		return
	}
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 5, id: "no-session"}
	_ = c.trySend(packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect:         packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "x"},
	})
	pk, err := c.read(5 * time.Second)
	if !isClosed(err) {
		t.Fatalf("client without an accepted certificate: got packet type %d (reason 0x%02x), err %v; want the handshake refused",
			pk.FixedHeader.Type, pk.ReasonCode, err)
	}
}

func TestPasswordLogin(t *testing.T) {
	logs := &logBuffer{}
	pw := fakePasswords{"alice": "s3cret"}
	b := startBroker(t, &fakeSink{}, brokerOpts{log: logs, opts: authOpts(pw, nil, "")})
	for _, tc := range []struct {
		name    string
		version byte
		mod     []func(*packets.Packet)
		want    byte
	}{
		{"v5_right", 5, []func(*packets.Packet){withLogin("alice", "s3cret")}, 0},
		{"v5_wrong", 5, []func(*packets.Packet){withLogin("alice", "wrong-pw")}, 0x86},
		{"v5_unknown_user", 5, []func(*packets.Packet){withLogin("mallory", "s3cret")}, 0x86},
		{"v311_right", 4, []func(*packets.Packet){withLogin("alice", "s3cret")}, 0},
		{"v311_wrong", 4, []func(*packets.Packet){withLogin("alice", "wrong-pw")}, 4},
		{"v311_unknown_user", 4, []func(*packets.Packet){withLogin("mallory", "x")}, 4},
		// A password file is configured: no anonymous clients, not
		// even on loopback.
		{"v5_anonymous", 5, nil, 0x87},
		{"v311_anonymous", 4, nil, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ack := dialRaw(t, b.Addr(), "c-"+tc.name, tc.version, tc.mod...); ack.ReasonCode != tc.want {
				t.Errorf("CONNACK 0x%02x, want 0x%02x", ack.ReasonCode, tc.want)
			}
		})
	}
	f := b.Stats().LoginFailures
	if f.BadPassword != 2 || f.UnknownUser != 2 || f.NotAuthorized != 2 {
		t.Errorf("login failures %+v", f)
	}
	if n := logs.count("mqtt login refused"); n != 6 {
		t.Errorf("%d refusals logged, want 6", n)
	}
	if logs.count("wrong-pw") != 0 {
		t.Error("a password reached the log")
	}
	// Each accepted login has its login line and, once the client has
	// gone, its disconnect line, both with the identity.
	if logs.count(`"identity":"alice","method":"password"`) != 2 || logs.count(`"message":"mqtt login"`) != 2 {
		t.Errorf("successful logins not logged with their identity:\n%s", logs.String())
	}
	waitFor(t, "disconnect lines", func() bool { return logs.count(`"message":"mqtt disconnect"`) == 2 })
	if n := logs.count(`"identity":"alice","client_id"`); n != 2 {
		t.Errorf("%d disconnect lines with the identity, want 2:\n%s", n, logs.String())
	}

	// allow_anonymous lets a client without a user name in, as anonymous.
	b2 := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) { c.AllowAnonymous = true }, opts: authOpts(pw, nil, "")})
	if _, ack := dialRaw(t, b2.Addr(), "anon", 5); ack.ReasonCode != 0 {
		t.Errorf("anonymous with allow_anonymous: CONNACK 0x%02x", ack.ReasonCode)
	}
	if _, ack := dialRaw(t, b2.Addr(), "bad", 5, withLogin("alice", "nope")); ack.ReasonCode != 0x86 {
		t.Errorf("a wrong password is still refused with allow_anonymous: CONNACK 0x%02x", ack.ReasonCode)
	}
}

func TestACLPublish(t *testing.T) {
	pw := fakePasswords{"alice": "pw", "watcher": "pw"}
	acl := &fakeACL{
		pub:  map[string][]string{"alice": {"devices/alice/"}},
		sub:  map[string][]string{"watcher": {""}},
		recv: map[string][]string{"watcher": {""}},
	}
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{
		routes: []Route{{Filter: "devices/#", Stream: "s", PartitionKey: "{identity}"}},
		opts:   authOpts(pw, acl, ""),
	})
	c, _ := dialRaw(t, b.Addr(), "alice-1", 5, withLogin("alice", "pw"))
	c.publish("devices/alice/telemetry", 1, 1, []byte("ok"))
	if pk := c.expect(packets.Puback, 5*time.Second); pk.ReasonCode != 0 {
		t.Fatalf("allowed publish: PUBACK 0x%02x", pk.ReasonCode)
	}
	c.publish("devices/bob/telemetry", 1, 2, []byte("forged"))
	if pk := c.expect(packets.Puback, 5*time.Second); pk.ReasonCode != packets.ErrNotAuthorized.Code {
		t.Errorf("denied QoS 1: PUBACK 0x%02x, want 0x87", pk.ReasonCode)
	}
	c.publish("devices/bob/telemetry", 2, 3, []byte("forged"))
	if pk := c.expect(packets.Pubrec, 5*time.Second); pk.ReasonCode != packets.ErrNotAuthorized.Code {
		t.Errorf("denied QoS 2: PUBREC 0x%02x, want 0x87", pk.ReasonCode)
	}
	c.publish("devices/bob/telemetry", 0, 0, []byte("forged"))
	// A retained message may be planted only where the client may publish.
	c.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true},
		TopicName:   "devices/bob/telemetry", PacketID: 4, Payload: []byte("planted"),
	})
	if pk := c.expect(packets.Puback, 5*time.Second); pk.ReasonCode != packets.ErrNotAuthorized.Code {
		t.Errorf("denied retained: PUBACK 0x%02x, want 0x87", pk.ReasonCode)
	}
	w, _ := dialRaw(t, b.Addr(), "watcher", 5, withLogin("watcher", "pw"))
	w.subscribe("devices/#", 1)
	if pk, err := w.read(300 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("subscriber got packet type %d (%q), err %v; want nothing retained", pk.FixedHeader.Type, pk.Payload, err)
	}

	// MQTT 3.1.1 has no negative PUBACK: disconnected, nothing acked.
	c3, _ := dialRaw(t, b.Addr(), "alice-2", 4, withLogin("alice", "pw"))
	c3.publish("devices/bob/telemetry", 1, 1, []byte("forged"))
	c3.expectClosed(5 * time.Second)

	got := sink.stored()
	if len(got) != 1 || string(got[0].rec.Data) != "ok" || got[0].rec.Key != "alice" {
		t.Fatalf("stored %+v, want only the allowed publish", got)
	}
	s := b.Stats()
	if s.Refused.NotAuthorized != 5 || s.DroppedQoS0 != 1 || s.Disconnected != 1 || s.Stored != 1 {
		t.Errorf("stats %+v", s)
	}
	if s.Received != s.Stored+s.Unrouted+s.Refused.Total() {
		t.Errorf("received %d != stored+unrouted+refused in %+v", s.Received, s)
	}
}

func TestACLSubscribeAndDelivery(t *testing.T) {
	pw := fakePasswords{"alice": "pw", "bob": "pw"}
	acl := &fakeACL{
		pub:  map[string][]string{"alice": {"devices/"}},
		sub:  map[string][]string{"bob": {"devices/"}},
		recv: map[string][]string{"bob": {"devices/bob/"}},
	}
	b := startBroker(t, &fakeSink{}, brokerOpts{opts: authOpts(pw, acl, "")})
	suback := func(c *rawClient, filters ...string) []byte {
		t.Helper()
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: 7}
		for _, f := range filters {
			pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
		}
		c.send(pk)
		return c.expect(packets.Suback, 5*time.Second).ReasonCodes
	}
	bob, _ := dialRaw(t, b.Addr(), "bob-5", 5, withLogin("bob", "pw"))
	// "#" is not under devices/; an exact topic bob may not read is
	// refused too; the wildcard filter under devices/ is granted.
	got := suback(bob, "#", "devices/alice/telemetry", "devices/+/telemetry")
	if want := []byte{0x87, 0x87, 1}; !slices.Equal(got, want) {
		t.Errorf("MQTT 5 SUBACK %x, want %x", got, want)
	}
	bob3, _ := dialRaw(t, b.Addr(), "bob-3", 4, withLogin("bob", "pw"))
	if got := suback(bob3, "#"); !slices.Equal(got, []byte{0x80}) {
		t.Errorf("MQTT 3.1.1 SUBACK %x, want 80", got)
	}
	if n := b.Stats().SubscribeDenied; n != 3 {
		t.Errorf("SubscribeDenied = %d, want 3", n)
	}

	// bob's subscription matches both topics; he receives only his own.
	alice, _ := dialRaw(t, b.Addr(), "alice", 5, withLogin("alice", "pw"))
	for i, topic := range []string{"devices/alice/telemetry", "devices/bob/telemetry"} {
		alice.publish(topic, 1, uint16(i+1), []byte(topic))
		alice.expect(packets.Puback, 5*time.Second)
	}
	pk := bob.expect(packets.Publish, 5*time.Second)
	if pk.TopicName != "devices/bob/telemetry" {
		t.Errorf("bob received %q", pk.TopicName)
	}
	if n := b.Stats().DeliveryDenied; n != 1 {
		t.Errorf("DeliveryDenied = %d, want 1", n)
	}
	acl.mu.Lock()
	defer acl.mu.Unlock()
	if !slices.Contains(acl.received, "bob devices/alice/telemetry") {
		t.Errorf("receive checks %q", acl.received)
	}
}

func TestClientIDMustMatch(t *testing.T) {
	pw := fakePasswords{"alice": "pw"}
	for _, mode := range []string{ClientIDMatchUsername, ClientIDMatchIdentity} {
		b := startBroker(t, &fakeSink{}, brokerOpts{opts: authOpts(pw, nil, mode)})
		if _, ack := dialRaw(t, b.Addr(), "alice", 5, withLogin("alice", "pw")); ack.ReasonCode != 0 {
			t.Errorf("%s: matching id: CONNACK 0x%02x", mode, ack.ReasonCode)
		}
		if _, ack := dialRaw(t, b.Addr(), "victim", 5, withLogin("alice", "pw")); ack.ReasonCode != packets.ErrClientIdentifierNotValid.Code {
			t.Errorf("%s: other id: MQTT 5 CONNACK 0x%02x, want 0x85", mode, ack.ReasonCode)
		}
		if _, ack := dialRaw(t, b.Addr(), "victim", 4, withLogin("alice", "pw")); ack.ReasonCode != 2 {
			t.Errorf("%s: other id: MQTT 3.1.1 CONNACK %d, want 2", mode, ack.ReasonCode)
		}
		if n := b.Stats().LoginFailures.ClientIDMismatch; n != 2 {
			t.Errorf("%s: client_id_mismatch = %d", mode, n)
		}
	}
}

// A session belongs to the identity that made it: neither an anonymous
// client nor another user can take it over by reusing its client id.
func TestSessionTakeoverNeedsSameIdentity(t *testing.T) {
	pw := fakePasswords{"alice": "pw", "eve": "pw"}
	b := startBroker(t, &fakeSink{}, brokerOpts{
		cfg:  func(c *Config) { c.AllowAnonymous = true },
		opts: authOpts(pw, nil, ""),
	})
	persistent := func(pk *packets.Packet) {
		pk.Connect.Clean = false
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 3600, true
	}
	a, _ := dialRaw(t, b.Addr(), "dev1", 5, withLogin("alice", "pw"), persistent)
	a.subscribe("devices/dev1/cmd", 1)
	a.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	a.expectClosed(5 * time.Second)
	if _, ack := dialRaw(t, b.Addr(), "dev1", 5, persistent); ack.ReasonCode != packets.ErrClientIdentifierNotValid.Code {
		t.Errorf("anonymous takeover: CONNACK 0x%02x, want 0x85", ack.ReasonCode)
	}
	if _, ack := dialRaw(t, b.Addr(), "dev1", 4, withLogin("eve", "pw")); ack.ReasonCode != 2 {
		t.Errorf("takeover by another user: CONNACK %d, want 2", ack.ReasonCode)
	}
	_, ack := dialRaw(t, b.Addr(), "dev1", 5, withLogin("alice", "pw"), persistent)
	if ack.ReasonCode != 0 || !ack.SessionPresent {
		t.Errorf("owner reconnecting: CONNACK 0x%02x session present %v", ack.ReasonCode, ack.SessionPresent)
	}
	if n := b.Stats().LoginFailures.ClientIDTaken; n != 2 {
		t.Errorf("client_id_taken = %d, want 2", n)
	}
}

// fakeClock drives a loginGuard: time moves only when the test says, and
// waits are recorded instead of slept.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) guard() *loginGuard {
	g := newLoginGuard(10 * time.Second)
	g.now = func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.now
	}
	g.wait = func(_ *trackedConn, d time.Duration) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.waits = append(c.waits, d)
	}
	return g
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

func TestLoginSlowdown(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	pw := &countingPasswords{fakePasswords: fakePasswords{"alice": "pw"}}
	b := startBroker(t, &fakeSink{}, brokerOpts{opts: func(o *Options) {
		o.Passwords, o.guard = pw, clock.guard()
	}})
	for i := range 11 {
		if _, ack := dialRaw(t, b.Addr(), "guess", 5, withLogin("alice", "guess")); ack.ReasonCode != 0x86 {
			t.Fatalf("attempt %d: CONNACK 0x%02x", i+1, ack.ReasonCode)
		}
	}
	// Five free failures, then one more second per attempt; the
	// eleventh would wait 6 s > 5 s: refused after 5 s, never checked.
	s := time.Second
	if got, want := clock.recorded(), []time.Duration{s, 2 * s, 3 * s, 4 * s, 5 * s, 5 * s}; !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if n := pw.calls.Load(); n != 10 {
		t.Errorf("%d passwords checked, want 10", n)
	}
	if f := b.Stats().LoginFailures; f.BadPassword != 10 || f.Throttled != 1 {
		t.Errorf("login failures %+v", f)
	}
	// Once the address has been quiet, logins are immediate again.
	clock.advance(time.Minute)
	if _, ack := dialRaw(t, b.Addr(), "alice", 5, withLogin("alice", "pw")); ack.ReasonCode != 0 {
		t.Errorf("after a quiet minute: CONNACK 0x%02x", ack.ReasonCode)
	}
	if n := len(clock.recorded()); n != 6 {
		t.Errorf("%d waits, want still 6", n)
	}
}

func TestLoginGuardBounds(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	g := clock.guard()
	g.max = 2
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	for range 5 {
		g.failed(a)
	}
	if w, ok := g.admit(a); w != time.Second || !ok {
		t.Fatalf("first throttled attempt: wait %v ok %v, want 1s true", w, ok)
	}
	g.failed(b)
	g.failed(c) // evicts a, the least recent
	if n := g.size(); n != 2 {
		t.Errorf("size %d, want 2", n)
	}
	if w, ok := g.admit(a); w != 0 || !ok {
		t.Errorf("evicted address: wait %v ok %v", w, ok)
	}
	// An IPv6 host is counted by its /64.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	for range 5 {
		g.failed(v6a)
	}
	if w, _ := g.admit(v6b); w != time.Second {
		t.Errorf("same /64: wait %v, want 1s", w)
	}
	if w, _ := g.admit(netip.MustParseAddr("2001:db8:0:1::1")); w != 0 {
		t.Errorf("other /64: wait %v, want 0", w)
	}
}

func TestReloadTLS(t *testing.T) {
	ca := newTestCA(t)
	lc := ca.tlsListener(false, false, "")
	ca.serverFiles("server", "first")
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) { c.Listeners = []ListenerConfig{lc} }})
	served := func() string {
		t.Helper()
		c, err := dialTLS(t, tlsListenerAddr(b), ca.clientTLS())
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("serving %q", cn)
	}
	ca.serverFiles("server", "second")
	if err := b.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	if cn := served(); cn != "second" {
		t.Errorf("after reload serving %q, want second", cn)
	}
	// A broken key: the error names it, the old pair stays in force.
	if err := os.WriteFile(lc.TLS.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := b.ReloadTLS()
	if !errors.Is(err, ErrTLSFiles) || !strings.Contains(err.Error(), lc.TLS.KeyFile) || !strings.Contains(err.Error(), "listeners[0]") {
		t.Errorf("ReloadTLS with a bad key: %v", err)
	}
	if cn := served(); cn != "second" {
		t.Errorf("after a failed reload serving %q, want second", cn)
	}
	if err := os.Remove(lc.TLS.CertFile); err != nil {
		t.Fatal(err)
	}
	if err := b.ReloadTLS(); err == nil || !strings.Contains(err.Error(), lc.TLS.CertFile) {
		t.Errorf("ReloadTLS with the certificate gone: %v", err)
	}
}

func TestNonLoopbackNeedsAuthentication(t *testing.T) {
	ca := newTestCA(t)
	open := ca.tlsListener(true, false, "")
	open.Listen = "0.0.0.0:8883"
	certs := ca.tlsListener(true, true, "")
	certs.Listen = "0.0.0.0:8884"
	plain := ListenerConfig{Listen: "192.168.1.10:1883"}
	for _, tc := range []struct {
		name      string
		listeners []ListenerConfig
		anonymous bool
		passwords bool
		want      []string // error paths
	}{
		{"loopback_only", nil, false, false, nil},
		{"client_certs_required", []ListenerConfig{certs}, false, false, nil},
		{"certs_optional", []ListenerConfig{certs, open}, false, false, []string{"listeners[1].listen"}},
		{"plain", []ListenerConfig{plain}, false, false, []string{"listeners[0].listen"}},
		{"passwords", []ListenerConfig{open, plain}, false, true, nil},
		{"allow_anonymous", []ListenerConfig{open, plain}, true, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Listeners, cfg.AllowAnonymous = tc.listeners, tc.anonymous
			var paths []string
			for _, err := range CheckAnonymous(cfg, tc.passwords) {
				p, _, _ := strings.Cut(err.Error(), ":")
				paths = append(paths, p)
			}
			if !slices.Equal(paths, tc.want) {
				t.Errorf("CheckAnonymous paths %q, want %q", paths, tc.want)
			}
			var pwc PasswordChecker
			if tc.passwords {
				pwc = fakePasswords{}
			}
			br, err := New(cfg, defaultRoutes, &fakeSink{}, Options{Passwords: pwc})
			if len(tc.want) > 0 {
				if !errors.Is(err, ErrAnonymousNotAllowed) || !strings.Contains(err.Error(), "mqtt."+tc.want[0]) {
					t.Errorf("New: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			_ = br.Close(context.Background())
		})
	}
}

func TestListenersValidate(t *testing.T) {
	ca := newTestCA(t)
	good := ca.tlsListener(true, true, "")
	junk := ca.write("junk.pem", []byte("junk"))
	mod := func(f func(*TLSConfig)) ListenerConfig {
		l := ca.tlsListener(true, false, "cn")
		l.Listen = "127.0.0.1:8883"
		f(&l.TLS)
		return l
	}
	for _, tc := range []struct {
		name string
		l    []ListenerConfig
		want string
	}{
		{"good", []ListenerConfig{good}, ""},
		{"plain", []ListenerConfig{{Listen: "127.0.0.1:1884"}}, ""},
		{"empty_listen", []ListenerConfig{{}}, "listeners[0].listen: must not be empty"},
		{"duplicate", []ListenerConfig{{Listen: "127.0.0.1:1884"}, {Listen: "127.0.0.1:1884"}}, "listeners[1].listen: 127.0.0.1:1884 is also listeners[0].listen"},
		{"same_as_listen", []ListenerConfig{{Listen: "127.0.0.1:1883"}}, "listeners[0].listen: 127.0.0.1:1883 is also listen"},
		{"missing_cert", []ListenerConfig{mod(func(c *TLSConfig) { c.CertFile = "/nonexistent/server.crt" })}, "listeners[0].tls.cert_file: open /nonexistent/server.crt"},
		{"missing_key", []ListenerConfig{mod(func(c *TLSConfig) { c.KeyFile = "/nonexistent/server.key" })}, "listeners[0].tls.key_file: open /nonexistent/server.key"},
		{"bad_key", []ListenerConfig{mod(func(c *TLSConfig) { c.KeyFile = junk })}, "listeners[0].tls.cert_file: "},
		{"no_cert", []ListenerConfig{mod(func(c *TLSConfig) { c.CertFile = "" })}, "listeners[0].tls.cert_file: must be set"},
		{"bad_ca", []ListenerConfig{mod(func(c *TLSConfig) { c.ClientCAFile = junk })}, "listeners[0].tls.client_ca_file: " + junk + " holds no PEM certificate"},
		{"require_without_ca", []ListenerConfig{mod(func(c *TLSConfig) { c.ClientCAFile, c.IdentityFrom, c.RequireClientCert = "", "", true })}, "listeners[0].tls.require_client_cert: needs client_ca_file"},
		{"identity_without_ca", []ListenerConfig{mod(func(c *TLSConfig) { c.ClientCAFile = "" })}, "listeners[0].tls.identity_from: needs client_ca_file"},
		{"bad_identity_from", []ListenerConfig{mod(func(c *TLSConfig) { c.IdentityFrom = "email" })}, `listeners[0].tls.identity_from: must be one of cn, san_dns, san_uri, got "email"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Listen, cfg.Listeners = "127.0.0.1:1883", tc.l
			cfg.Defaults()
			var msgs []string
			for _, err := range cfg.Validate() {
				msgs = append(msgs, err.Error())
			}
			all := strings.Join(msgs, "\n")
			if tc.want == "" {
				if all != "" {
					t.Errorf("unexpected errors:\n%s", all)
				}
				return
			}
			if len(msgs) != 1 || !strings.HasPrefix(all, tc.want) {
				t.Errorf("errors:\n%s\nwant one starting %q", all, tc.want)
			}
		})
	}
	// identity_from defaults to cn once client certificates are verified.
	cfg := testConfig()
	cfg.Listeners = []ListenerConfig{ca.tlsListener(true, false, "")}
	if got := cfg.WithDefaults().Listeners[0].TLS.IdentityFrom; got != IdentityFromCN || cfg.Listeners[0].TLS.IdentityFrom != "" {
		t.Errorf("identity_from default %q (original %q)", got, cfg.Listeners[0].TLS.IdentityFrom)
	}
}

// BenchmarkTLSHandshake: logins per second over plain TCP, TLS and
// mutual TLS, each a full connection: handshake, CONNECT, CONNACK, close.
// Compare the sub-benchmarks of one run.
func BenchmarkTLSHandshake(b *testing.B) {
	ca := newTestCA(b)
	br := startBroker(b, &fakeSink{}, brokerOpts{
		cfg: func(c *Config) {
			c.Listeners = []ListenerConfig{ca.tlsListener(false, false, ""), ca.tlsListener(true, true, "")}
		},
		opts: authOpts(nil, nil, ""),
	})
	addrs := br.ListenerAddrs()
	for _, bc := range []struct {
		name string
		addr net.Addr
		tls  *tls.Config
	}{
		{"plain", addrs[0], nil},
		{"tls", addrs[1], ca.clientTLS()},
		{"mtls", addrs[2], ca.clientTLS(ca.client("bench-device", "", ""))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				var conn net.Conn
				var err error
				if bc.tls == nil {
					conn, err = net.Dial("tcp", bc.addr.String())
				} else {
					conn, err = tls.Dial("tcp", bc.addr.String(), bc.tls)
				}
				if err != nil {
					b.Fatal(err)
				}
				c := &rawClient{t: b, conn: conn, r: bufio.NewReader(conn), version: 5, id: "bench-device"}
				c.send(packets.Packet{
					FixedHeader:     packets.FixedHeader{Type: packets.Connect},
					ProtocolVersion: 5,
					Connect:         packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "bench-device"},
				})
				if pk := c.expect(packets.Connack, 5*time.Second); pk.ReasonCode != 0 {
					b.Fatalf("CONNACK 0x%02x", pk.ReasonCode)
				}
				_ = conn.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}
