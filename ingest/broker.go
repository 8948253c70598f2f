package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/conf"
)

// Limits the configuration does not expose. Each bounds what one client can
// make the gateway hold.
const (
	// maxMessageExpiry caps how long a message waits for an offline
	// subscriber.
	maxMessageExpiry = 24 * 60 * 60
	// topicAliasMaximum caps the inbound topic-alias table per client
	// (mochi allows 65535 aliases, each holding a topic string). mochi
	// does not advertise it, so MQTT 5 clients assume 0 and never use
	// aliases; the cap only limits clients that ignore that.
	topicAliasMaximum = 16
	// readBufferSize is each client's bufio.Reader, held for the life
	// of the connection: 1 KiB still takes several typical telemetry
	// publishes per read system call (larger packets are read straight
	// into their own buffer by io.ReadFull).
	readBufferSize = 1 << 10
	// writeBufferSize is only a threshold for coalescing queued
	// outbound packets; mochi allocates that buffer while a queue
	// exists, not per idle client.
	writeBufferSize = 2 << 10
	// sysTopicInterval is how often mochi refreshes $SYS topics, in
	// seconds. Each refresh calls runtime.ReadMemStats, which stops the
	// world; mochi's default is every second.
	sysTopicInterval = 10
	// defaultMaxRecordSize is used when Options.MaxRecordSize is 0 (the
	// Kinesis record limit).
	defaultMaxRecordSize = 1 << 20
)

// Options are the broker's dependencies and the values it takes from
// other sections of the configuration.
type Options struct {
	Logger zerolog.Logger
	// MaxRecordSize is the largest max_record_size across streams; with
	// mqtt.max_packet_size 0 the packet limit is derived from it.
	MaxRecordSize int64

	// Access control (auth.go). With neither Passwords nor client
	// certificates, anonymous clients are allowed on loopback listeners
	// only (anywhere with allow_anonymous).
	//
	// Passwords checks CONNECT user names and passwords; nil = no
	// password file.
	Passwords PasswordChecker
	// ACL decides publish, subscribe and delivery per identity; nil =
	// everything allowed.
	ACL Authorizer
	// ClientIDMustMatch is "off" (or ""), "username" or "identity": a
	// client whose client id differs is refused.
	ClientIDMustMatch string

	// Registerer, if set, gets the broker's metrics (counters and the
	// publish→PUBACK histogram) until Close.
	Registerer prometheus.Registerer

	// guard replaces the login slow-down (tests: a clock of their own).
	guard *loginGuard
}

// Broker is the embedded MQTT broker with the ingest hooks installed.
type Broker struct {
	cfg      Config
	log      zerolog.Logger
	server   *mqtt.Server
	listener *listener
	extra    []*listener // mqtt.listeners, in order
	hook     *publishHook
	limits   *limitsHook
	stats    counters
	metrics  *collector
	reg      prometheus.Registerer

	routesMu sync.Mutex // serialises Apply; guards routes
	routes   []Route    // as configured, for the next Apply's comparison

	ctx    context.Context // parent of every connection context
	cancel context.CancelFunc

	started   atomic.Bool
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New builds a broker; nothing listens until Start. It fails if the
// configuration is invalid, a route cannot be compiled, or anonymous
// clients would be accepted on a non-loopback listener.
func New(cfg Config, routes []Route, sink Sink, opts Options) (*Broker, error) {
	cfg = cfg.WithDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("ingest: invalid mqtt configuration: %w", errors.Join(conf.Prefix("mqtt", errs)...))
	}
	if sink == nil {
		return nil, errors.New("ingest: nil sink")
	}
	if err := checkAnonymous(cfg, opts.Passwords != nil); err != nil {
		return nil, err
	}
	switch opts.ClientIDMustMatch {
	case "", ClientIDMatchOff, ClientIDMatchUsername, ClientIDMatchIdentity:
	default:
		return nil, fmt.Errorf("ingest: client_id_must_match must be off, username or identity, got %q", opts.ClientIDMustMatch)
	}
	rt, err := newRouter(routes)
	if err != nil {
		return nil, err
	}
	maxRecord := conf.ByteSize(opts.MaxRecordSize)
	if maxRecord <= 0 {
		maxRecord = defaultMaxRecordSize
	}
	packetSize := uint32(min(cfg.PacketSize(maxRecord), conf.ByteSize(math.MaxUint32)))

	log := opts.Logger
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = packetSize
	caps.MaximumClientWritesPending = int32(cfg.MaxPendingWrites)
	caps.ReceiveMaximum = uint16(cfg.ReceiveMaximum)
	caps.MaximumInflight = uint16(cfg.MaxInflight)
	caps.MaximumSessionExpiryInterval = uint32(cfg.SessionExpiryMax.D() / time.Second)
	caps.MaximumClientSubscriptions = cfg.MaxSubscriptions
	caps.MaximumSubscriptions = int64(cfg.MaxSubsTotal)
	caps.MaximumMessageExpiryInterval = maxMessageExpiry
	caps.TopicAliasMaximum = topicAliasMaximum
	// mochi copies a publish's properties, user properties included,
	// into its PUBACK: every acknowledgement would echo the device's
	// metadata back over the link.
	caps.Compatibilities.NoInheritedPropertiesOnAck = true

	server := mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		ClientNetReadBufferSize:  readBufferSize,
		ClientNetWriteBufferSize: writeBufferSize,
		Logger:                   newMochiLogger(opts.Logger),
		SysTopicResendInterval:   sysTopicInterval,
		InlineClient:             false,
	})

	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:    cfg,
		log:    log,
		server: server,
		ctx:    ctx,
		cancel: cancel,
	}
	b.metrics = newCollector(b)
	b.listener = newListener("mqtt", cfg.Listen, cfg.ConnectTimeout.D(), ctx, log)
	b.listener.disconnectClients = func() { b.disconnectClients(b.listener.id) }
	if err := b.addListeners(); err != nil {
		cancel()
		return nil, err
	}
	ph := &publishHook{
		sink:       sink,
		server:     server,
		ctx:        ctx,
		closing:    &b.closing,
		stats:      &b.stats,
		ackLatency: b.metrics.ack,
		log:        log,
		unrouted:   newUnroutedLog(log, unroutedLogInterval),
	}
	ph.deferred, _ = sink.(DeferredSink)
	ph.router.Store(rt)
	b.routes = append([]Route(nil), routes...)
	for i := range ph.logLimit {
		ph.logLimit[i] = newLimiter(refusalLogInterval)
	}
	b.hook = ph
	lines := newConnLog(log)
	guard := opts.guard
	if guard == nil {
		guard = newLoginGuard(cfg.ConnectTimeout.D())
	}
	ah := &authHook{
		server:         server,
		passwords:      opts.Passwords,
		acl:            opts.ACL,
		idMustMatch:    opts.ClientIDMustMatch,
		allowAnonymous: cfg.AllowAnonymous,
		guard:          guard,
		pub:            ph,
		stats:          &b.stats,
		log:            log,
		lines:          lines,
	}
	lh := newLimitsHook(cfg, server, &b.stats, log)
	ph.limits, b.limits = lh, lh
	server.Options.OnRefused = lh.onMochiRefused
	// The limits hook goes first, so a gateway at max_connections refuses
	// before it spends a password hash; the auth hook before the ingest
	// hook, whose OnPublish must never see a publish the ACL denies.
	for _, h := range []mqtt.Hook{lh, ah, ph, &sessionLogHook{lines: lines}} {
		if err := server.AddHook(h, nil); err != nil {
			cancel()
			return nil, fmt.Errorf("ingest: add hook %s: %w", h.ID(), err)
		}
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(b.metrics); err != nil {
			cancel()
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
		b.reg = opts.Registerer
	}
	return b, nil
}

// refusalLogInterval: at most one "publish refused" line per reason per
// interval; the line carries how many were suppressed.
const refusalLogInterval = time.Second

// Start binds the listener and starts serving. The listen address is
// bound before it returns, so Addr is valid and a port conflict is
// reported here.
func (b *Broker) Start() error {
	if b.closing.Load() || !b.started.CompareAndSwap(false, true) {
		return ErrBrokerState
	}
	all := b.listeners()
	abandon := func(ls []*listener) {
		for _, l := range ls {
			l.abandon()
		}
	}
	for i, l := range all {
		if err := l.bind(); err != nil {
			abandon(all[:i])
			return fmt.Errorf("ingest: listen on %s: %w", l.address, err)
		}
	}
	for _, l := range all {
		if err := b.server.AddListener(l); err != nil {
			abandon(all)
			return fmt.Errorf("ingest: add listener: %w", err)
		}
	}
	if err := b.server.Serve(); err != nil {
		abandon(all)
		return fmt.Errorf("ingest: serve: %w", err)
	}
	for _, l := range all {
		b.log.Info().Str("mqtt", l.Address()).
			Str("listener", l.id).
			Bool("tls", l.tls != nil).
			Uint32("max_packet_size", b.server.Options.Capabilities.MaximumPacketSize).
			Bool("anonymous", b.cfg.AllowAnonymous).
			Msg("mqtt listening")
	}
	return nil
}

// Addr is the bound listen address (with the real port when the
// configured port was 0), or nil before Start.
func (b *Broker) Addr() net.Addr {
	if b.listener.ln == nil {
		return nil
	}
	return b.listener.ln.Addr()
}

// Listening reports whether the broker accepts connections: started and
// not closing.
func (b *Broker) Listening() bool { return b.started.Load() && !b.closing.Load() }

// Stats returns the publish counters.
func (b *Broker) Stats() Stats {
	s := b.stats.snapshot()
	for _, l := range b.listeners() {
		s.Connections += l.open()
	}
	s.Limits.RetainedMessages, s.Limits.RetainedBytes = b.limits.retained.usage()
	return s
}

// disconnectClients sends MQTT 5 clients DISCONNECT 0x8B (server shutting
// down) and closes every client connection mochi knows. A client that has
// stopped reading would block that write until its keepalive deadline, one
// client after another, so all writes share one short deadline.
func (b *Broker) disconnectClients(listenerID string) {
	deadline := time.Now().Add(disconnectWriteTimeout)
	for _, cl := range b.server.Clients.GetAll() {
		if cl.Net.Listener != listenerID || cl.Closed() {
			continue
		}
		if cl.Net.Conn != nil {
			_ = cl.Net.Conn.SetWriteDeadline(deadline)
		}
		_ = b.server.DisconnectClient(cl, packets.ErrServerShuttingDown)
	}
}

// disconnectWriteTimeout bounds the DISCONNECT writes at shutdown.
const disconnectWriteTimeout = time.Second

// Close stops accepting connections, disconnects every client (MQTT 5
// clients get DISCONNECT 0x8B server shutting down) and waits for publish
// hooks in flight to return, so that the sink can be closed safely after
// Close returns nil. Disconnecting cancels the contexts given to the sink,
// so a write waiting for rate capacity gives up at once; a write waiting
// for its commit finishes as the sink decides. If ctx ends first, every
// context is cancelled and ctx's error returned; hooks may still be
// returning then.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.close(ctx) })
	return b.closeErr
}

func (b *Broker) close(ctx context.Context) error {
	b.closing.Store(true)
	defer b.cancel()
	if b.reg != nil {
		defer b.reg.Unregister(b.metrics)
	}
	if !b.started.Load() {
		return nil
	}
	done := make(chan struct{})
	go func() {
		// mochi's Close closes the listener (ours: it also closes the
		// connections still waiting to send CONNECT), disconnects its
		// clients, waits for their read loops, then stops the hooks.
		_ = b.server.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel()
		return fmt.Errorf("ingest: close: %w", ctx.Err())
	}
	for _, l := range b.listeners() {
		if err := l.wait(ctx); err != nil {
			b.cancel()
			return fmt.Errorf("ingest: close: %w", err)
		}
	}
	return nil
}
