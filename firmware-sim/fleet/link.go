package fleet

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// errLinkCut is what reads and writes return once a storm or outage cut
// the link. It must not look like a locally closed socket: paho ignores
// "use of closed network connection" as its own doing and would never
// notice the loss.
var errLinkCut = errors.New("fleet: link lost (simulated)")

// errHeld is what a device's dialer returns while the device is meant to
// be offline (during an outage window or before its storm delay elapsed).
var errHeld = errors.New("fleet: device offline (simulated)")

// link is a device's network connection. The simulator keeps a handle on
// it so that storms and outages can cut it like a lost uplink (paho then
// notices, reconnects and resends what was in flight), and so slow
// devices can be slowed where real ones are: on the wire.
type link struct {
	net.Conn
	slow      *Slow
	isCut     atomic.Bool
	closeOnce sync.Once
	closed    chan struct{} // only for slow links, to cut sleeps short
}

func (l *link) Read(b []byte) (int, error) {
	n, err := l.Conn.Read(b)
	if err != nil && l.isCut.Load() {
		return n, errLinkCut
	}
	return n, err
}

// cut fails every pending and future read and write with errLinkCut;
// paho then closes the connection and reconnects.
func (l *link) cut() {
	if l.isCut.Swap(true) {
		return
	}
	l.closeOnce.Do(func() {
		if l.closed != nil {
			close(l.closed)
		}
	})
	_ = l.Conn.SetDeadline(time.Unix(1, 0))
}

func (l *link) Write(b []byte) (int, error) {
	if l.isCut.Load() {
		return 0, errLinkCut
	}
	if s := l.slow; s != nil {
		delay := s.Latency
		if s.Bandwidth > 0 {
			delay += time.Duration(float64(len(b)) / float64(s.Bandwidth) * float64(time.Second))
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				if l.isCut.Load() {
					return 0, errLinkCut
				}
				return 0, net.ErrClosed
			}
		}
	}
	n, err := l.Conn.Write(b)
	if err != nil && l.isCut.Load() {
		return n, errLinkCut
	}
	return n, err
}

// SetDeadline and friends are ignored once cut, so paho cannot revive
// the link by resetting its write deadline.
func (l *link) SetDeadline(t time.Time) error {
	if l.isCut.Load() {
		return nil
	}
	return l.Conn.SetDeadline(t)
}

func (l *link) SetWriteDeadline(t time.Time) error {
	if l.isCut.Load() {
		return nil
	}
	return l.Conn.SetWriteDeadline(t)
}

func (l *link) SetReadDeadline(t time.Time) error {
	if l.isCut.Load() {
		return nil
	}
	return l.Conn.SetReadDeadline(t)
}

func (l *link) Close() error {
	l.closeOnce.Do(func() {
		if l.closed != nil {
			close(l.closed)
		}
	})
	return l.Conn.Close()
}

// dial is the device's paho CustomOpenConnectionFn.
func (d *device) dial(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
	f := d.f
	f.c.attempts.Add(1)
	select {
	case <-f.stopping: // the run is draining: outages are over
	default:
		if time.Now().UnixNano() < d.holdUntil.Load() {
			return nil, errHeld
		}
	}
	dl := net.Dialer{Timeout: f.cfg.ConnectTimeout}
	conn, err := dl.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if tlsScheme(u.Scheme) {
		cfg := &tls.Config{}
		if f.cfg.TLS != nil {
			cfg = f.cfg.TLS.Clone()
		}
		if d.cert != nil {
			cfg.Certificates = []tls.Certificate{*d.cert}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(conn, cfg)
		_ = tc.SetDeadline(time.Now().Add(f.cfg.ConnectTimeout))
		if err := tc.Handshake(); err != nil {
			_ = conn.Close()
			return nil, err
		}
		_ = tc.SetDeadline(time.Time{})
		conn = tc
	}
	l := &link{Conn: conn, slow: d.slow}
	if d.slow != nil {
		l.closed = make(chan struct{})
	}
	d.link.Store(l)
	return l, nil
}

// cut drops the device's current connection, as a lost uplink would.
func (d *device) cut() {
	if l := d.link.Load(); l != nil {
		l.cut()
	}
}

// onReconnecting runs on paho's reconnect goroutine before each attempt:
// it keeps a held device offline until its hold ends (or the run stops).
func (d *device) onReconnecting(mqtt.Client, *mqtt.ClientOptions) {
	wait := time.Duration(d.holdUntil.Load() - time.Now().UnixNano())
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.f.stopping:
	}
}
