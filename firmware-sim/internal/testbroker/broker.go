package testbroker

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a running broker and what it counted.
type Broker struct {
	Server   *mqtt.Server
	URL      string // tcp://127.0.0.1:PORT
	counter  *counter
	stopOnce sync.Once
}

// Options tune the broker for a test.
type Options struct {
	// MaxPacketSize > 0 makes mochi disconnect clients sending larger packets.
	MaxPacketSize uint32
	// OnPublish, if set, is called for every publish; returning an error
	// follows mochi's semantics (see the weir MQTT reference).
	OnPublish func(cl *mqtt.Client, pk packets.Packet) error
	// TLS, if set, serves MQTT over TLS (URL tls://...); its ClientAuth
	// and ClientCAs decide whether client certificates are required.
	TLS *tls.Config
	// Authenticate, if set, decides each CONNECT (else all are allowed).
	Authenticate func(cl *mqtt.Client, pk packets.Packet) bool
}

// Start runs a broker until the test ends.
func Start(tb testing.TB, o Options) *Broker {
	tb.Helper()
	b, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

// New starts a broker; the caller must Close it.
func New(o Options) (*Broker, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 256
	if o.MaxPacketSize > 0 {
		caps.MaximumPacketSize = o.MaxPacketSize
	}
	s := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	var authHook mqtt.Hook = new(auth.AllowHook)
	if o.Authenticate != nil {
		authHook = &authenticator{fn: o.Authenticate}
	}
	if err := s.AddHook(authHook, nil); err != nil {
		return nil, err
	}
	c := &counter{connects: map[string]int{}, peers: map[string]string{}, onPublish: o.OnPublish}
	if err := s.AddHook(c, nil); err != nil {
		return nil, err
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0", TLSConfig: o.TLS})
	if err := s.AddListener(l); err != nil {
		return nil, err
	}
	if err := s.Serve(); err != nil {
		_ = s.Close()
		return nil, err
	}
	scheme := "tcp://"
	if o.TLS != nil {
		scheme = "tls://"
	}
	return &Broker{Server: s, URL: scheme + l.Address(), counter: c}, nil
}

// Close stops the broker; safe to call twice.
func (b *Broker) Close() { b.stopOnce.Do(func() { _ = b.Server.Close() }) }

// Connects is how many CONNECTs the broker accepted in total.
func (b *Broker) Connects() int64 { return b.counter.total.Load() }

// ConnectsOf is how many times one client id connected.
func (b *Broker) ConnectsOf(clientID string) int {
	b.counter.mu.Lock()
	defer b.counter.mu.Unlock()
	return b.counter.connects[clientID]
}

// ClientIDs is the number of distinct client ids that connected.
func (b *Broker) ClientIDs() int {
	b.counter.mu.Lock()
	defer b.counter.mu.Unlock()
	return len(b.counter.connects)
}

// PeerCN is the subject common name of the client certificate the client
// id last connected with ("" without one).
func (b *Broker) PeerCN(clientID string) string {
	b.counter.mu.Lock()
	defer b.counter.mu.Unlock()
	return b.counter.peers[clientID]
}

// Publishes is how many PUBLISH packets reached OnPublish.
func (b *Broker) Publishes() int64 { return b.counter.publishes.Load() }

// PublishesTo counts publishes whose topic starts with prefix.
func (b *Broker) PublishesTo(prefix string) int64 {
	b.counter.mu.Lock()
	defer b.counter.mu.Unlock()
	var n int64
	for t, c := range b.counter.topics {
		if bytes.HasPrefix([]byte(t), []byte(prefix)) {
			n += c
		}
	}
	return n
}

type counter struct {
	mqtt.HookBase
	total     atomic.Int64
	publishes atomic.Int64
	mu        sync.Mutex
	connects  map[string]int
	peers     map[string]string // client id -> client certificate CN
	topics    map[string]int64
	onPublish func(cl *mqtt.Client, pk packets.Packet) error
}

func (c *counter) ID() string { return "testbroker-counter" }

func (c *counter) Provides(b byte) bool {
	return b == mqtt.OnConnect || b == mqtt.OnPublish
}

func (c *counter) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	c.total.Add(1)
	c.mu.Lock()
	c.connects[cl.ID]++
	if tc, ok := cl.Net.Conn.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			c.peers[cl.ID] = certs[0].Subject.CommonName
		}
	}
	c.mu.Unlock()
	return nil
}

// authenticator lets Options.Authenticate decide CONNECTs; every
// authenticated client may publish and subscribe anywhere.
type authenticator struct {
	mqtt.HookBase
	fn func(cl *mqtt.Client, pk packets.Packet) bool
}

func (a *authenticator) ID() string { return "testbroker-authenticate" }

func (a *authenticator) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (a *authenticator) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return a.fn(cl, pk)
}

func (a *authenticator) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (c *counter) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	c.publishes.Add(1)
	c.mu.Lock()
	if c.topics == nil {
		c.topics = map[string]int64{}
	}
	c.topics[pk.TopicName]++
	c.mu.Unlock()
	if c.onPublish != nil {
		return pk, c.onPublish(cl, pk)
	}
	return pk, nil
}
