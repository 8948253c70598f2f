package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/tlsmem"
)

// listener is a mochi TCP listener that bounds what a connection may cost
// before it has said who it is, and that can end every connection it
// accepted.
//
// mochi's own TCP listener sets no deadline until CONNECT is parsed, so a
// socket that never sends a byte holds a goroutine and its buffers forever.
// Here every accepted connection gets a read/write deadline of
// connectTimeout. mochi replaces it with its keepalive deadline
// (Client.refreshDeadline, SetDeadline(now + 1.5 × keepalive), or no
// deadline for keepalive 0) right after it has read and validated CONNECT,
// and again before every later packet, so the connect deadline never
// outlives the CONNECT packet.
//
// Each connection also carries a context, cancelled when the connection is
// closed by anyone (mochi's Client.Stop on takeover, refusal or shutdown,
// or this listener's close): the publish hook hands it to the sink so that
// a write waiting for rate capacity stops waiting once nobody can receive
// its acknowledgement.
type listener struct {
	id             string
	address        string
	connectTimeout time.Duration
	parent         context.Context
	log            zerolog.Logger
	// disconnectClients ends the MQTT sessions of this listener's clients
	// gracefully; set by the broker.
	disconnectClients func()
	// tls, when set, makes this a TLS listener.
	tls *tlsServer

	ln      net.Listener
	closing atomic.Bool
	serving sync.WaitGroup // the accept loop and every establish goroutine

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newListener(id, address string, connectTimeout time.Duration, parent context.Context, log zerolog.Logger) *listener {
	return &listener{
		id:             id,
		address:        address,
		connectTimeout: connectTimeout,
		parent:         parent,
		log:            log,
		conns:          make(map[*trackedConn]struct{}),
	}
}

// bind opens the socket. It is separate from Init so that Broker.Start can
// report a bind error before mochi starts anything.
func (l *listener) bind() error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.ln = ln
	// The accept loop's slot is taken here, not in Serve (which mochi
	// starts on a goroutine of its own), so that a wait that comes
	// before Serve runs still waits for it.
	l.serving.Add(1)
	return nil
}

// abandon releases a bound socket that was never served (Start failed
// after bind).
func (l *listener) abandon() {
	l.closing.Store(true)
	_ = l.ln.Close()
	l.serving.Done()
}

// ID returns the listener id mochi files clients under.
func (l *listener) ID() string { return l.id }

// Address returns the bound address, with the real port when the
// configured one was 0.
func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Protocol names the transport for mochi's logs.
func (l *listener) Protocol() string {
	if l.tls != nil {
		return "tls"
	}
	return "tcp"
}

// Init is mochi's hook to open the socket; Broker.Start has already bound
// it, to report the error itself.
func (l *listener) Init(*slog.Logger) error {
	if l.ln == nil {
		return l.bind()
	}
	return nil
}

// Serve accepts connections until Close. It runs establish on a goroutine
// per connection, as mochi's listeners do, but counts those goroutines so
// that Broker.Close can wait for every publish hook to return.
func (l *listener) Serve(establish listeners.EstablishFn) {
	defer l.serving.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: keep serving the
			// connections we have, try again shortly, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn().Err(err).Dur("retry_in_ms", backoff).Msg("mqtt accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc := l.track(c)
		if tc == nil {
			_ = c.Close()
			return
		}
		l.serving.Add(1)
		go l.serveConn(tc, establish)
	}
}

// serveConn runs mochi on one connection. It is the bottom frame of the
// goroutine under mochi's read loop, where an idle client's goroutine
// stays parked, so it is kept small: a deeper idle stack keeps the
// runtime from shrinking the goroutine's stack after it has grown.
func (l *listener) serveConn(tc *trackedConn, establish listeners.EstablishFn) {
	err := establish(l.id, tc)
	_ = tc.Close()
	l.serving.Done()
	if err != nil {
		l.logEnded(tc, err)
	}
}

// logEnded notes a connection that ended without a clean DISCONNECT
// (timeouts, resets, a bad CONNECT): routine for a fleet, so debug only.
//
//go:noinline
func (l *listener) logEnded(tc *trackedConn, err error) {
	if e := l.log.Debug(); e.Enabled() {
		e.Err(err).Stringer("remote", tc.RemoteAddr()).Msg("mqtt connection ended")
	}
}

// track wraps an accepted connection, or returns nil once closing. On a
// TLS listener the handshake is left to the first read (mochi's, of
// CONNECT), so it runs on the connection's goroutine under the connect
// deadline set here.
func (l *listener) track(c net.Conn) *trackedConn {
	if l.connectTimeout > 0 {
		_ = c.SetDeadline(time.Now().Add(l.connectTimeout))
	}
	tc := &trackedConn{l: l}
	if l.tls != nil {
		tlsc := tls.Server(c, l.tls.base)
		c = tlsc
		if tlsmem.Supported() {
			tc.unreleased = tlsc
		}
	}
	tc.Conn = c
	tc.usage.since = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing.Load() {
		return nil
	}
	l.conns[tc] = struct{}{}
	return tc
}

func (l *listener) forget(tc *trackedConn) {
	l.mu.Lock()
	delete(l.conns, tc)
	l.mu.Unlock()
}

// Close stops accepting, disconnects the clients mochi knows (MQTT 5
// clients get DISCONNECT 0x8B), then closes whatever is left, including
// connections that have not sent CONNECT yet, which mochi does not know.
//
// mochi's own closeClients is not used: it calls Clients.GetByListener,
// which takes the clients read lock twice and deadlocks when a client
// connects or disconnects in between (mochi issue #488, unfixed in
// v2.7.9); disconnectClients takes it once.
func (l *listener) Close(listeners.CloseFn) {
	if !l.closing.CompareAndSwap(false, true) {
		return
	}
	if l.ln != nil {
		_ = l.ln.Close()
	}
	if l.disconnectClients != nil {
		l.disconnectClients()
	}
	l.mu.Lock()
	left := make([]*trackedConn, 0, len(l.conns))
	for tc := range l.conns {
		left = append(left, tc)
	}
	l.mu.Unlock()
	for _, tc := range left {
		_ = tc.Close()
	}
}

// open returns the number of connections currently accepted.
func (l *listener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// wait blocks until the accept loop and every connection goroutine have
// returned, or ctx ends.
func (l *listener) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		l.serving.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trackedConn is an accepted connection with a context that ends when the
// connection is closed. The context is made on first use: most devices
// are idle most of the time, and it costs a few hundred bytes each.
type trackedConn struct {
	net.Conn
	l   *listener
	ctx atomic.Pointer[connCtx]

	mu     sync.Mutex // orders context creation against Close
	closed bool
	err    error

	auth  connAuth
	usage clientUsage // clients.go

	// unreleased is the TLS connection until its handshake-sized input
	// buffers have been handed back (Read), nil after or on plain TCP.
	unreleased *tls.Conn
}

// Read reads the connection. On TLS, the first reads after the handshake
// also give crypto/tls's handshake-sized buffers back (tlsmem): they run on
// mochi's read goroutine, between its reads, as tlsmem.Release requires.
// That is 3.5 KiB per device with a Go client's hello, ~7 KiB of RSS with
// the collector's headroom.
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.unreleased != nil && err == nil && tlsmem.Release(c.unreleased) {
		c.unreleased = nil
	}
	return n, err
}

// tlsReadBufferSize is mochi's read buffer on a TLS connection, in place
// of readBufferSize. crypto/tls already holds the whole decrypted record;
// mochi reads the fixed header a byte at a time and the rest of a packet
// with io.ReadFull, which bufio hands straight to the connection once its
// buffer is empty. So a small buffer costs one more in-memory Read per
// packet, and saves ~1 KiB that every idle TLS client held (about twice
// that in RSS, with the garbage collector's headroom).
const tlsReadBufferSize = 64

// ReadBufferSize is mochi's read buffer size for this connection
// (mqtt.ReadBufferSizer): small on TLS, 0 (mochi's option) otherwise.
func (c *trackedConn) ReadBufferSize() int {
	if c.l.tls != nil {
		return tlsReadBufferSize
	}
	return 0
}

type connCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// context returns the connection's context, cancelled once the
// connection is closed (or the broker is forced to stop).
func (c *trackedConn) context() context.Context {
	if cc := c.ctx.Load(); cc != nil {
		return cc.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.ctx.Load(); cc != nil {
		return cc.ctx
	}
	ctx, cancel := context.WithCancel(c.l.parent)
	if c.closed {
		cancel()
	}
	c.ctx.Store(&connCtx{ctx: ctx, cancel: cancel})
	return ctx
}

// Close closes the socket once, cancels the connection's context and
// forgets the connection.
func (c *trackedConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.err
	}
	c.closed = true
	// Socket first: a hook woken by the cancellation must find nothing
	// left to write its answer to.
	if tc, ok := c.Conn.(*tls.Conn); ok {
		// tls.Conn.Close first writes a close_notify alert with a
		// deadline of its own (5 s): a client that stopped reading would
		// hold Close, and a broker shutdown, that long. MQTT ends its
		// sessions with its own packets; the socket is closed at once.
		c.err = tc.NetConn().Close()
	} else {
		c.err = c.Conn.Close()
	}
	if cc := c.ctx.Load(); cc != nil {
		cc.cancel()
	}
	err := c.err
	c.mu.Unlock()
	c.l.forget(c)
	return err
}

// connContext returns the context of the connection behind conn, or
// fallback for connections this package did not accept.
func connContext(conn net.Conn, fallback context.Context) context.Context {
	if tc, ok := conn.(*trackedConn); ok {
		return tc.context()
	}
	return fallback
}
