package ingest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/internal/conf"
)

// On a TLS listener the handshake runs under the connect deadline: a
// client that opens TCP and never sends a ClientHello, or stops halfway
// through the handshake, is dropped once connect_timeout has passed, and
// leaves nothing behind. A device that completes the handshake and
// CONNECT lives on under its keepalive.
func TestTLSHandshakeDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ca := newTestCA(t)
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) {
		c.ConnectTimeout = conf.Duration(timeout)
		c.Listeners = []ListenerConfig{ca.tlsListener(true, false, "")}
	}})
	addr := tlsListenerAddr(b)

	silent, silentStart := dialAt(t, addr)
	// Half a ClientHello: the record header promises 512 bytes, 3 come.
	partial, partialStart := dialAt(t, addr)
	if _, err := partial.Write([]byte{22, 3, 1, 2, 0, 1, 0, 1}); err != nil {
		t.Fatal(err)
	}
	// A client whose ClientHello went through but whose certificate and
	// Finished never arrive: the server has written its flight and waits.
	// (The client's side of a TLS 1.3 handshake is complete once it has
	// sent Finished.)
	stalled, stalledStart := dialAt(t, addr)
	if err := tls.Client(&helloOnlyConn{Conn: stalled}, ca.clientTLS(ca.client("stall", "", ""))).Handshake(); err != nil {
		t.Fatalf("stalled client's handshake: %v", err)
	}
	// A device that finishes the handshake and CONNECT with keepalive 60
	// outlives the connect timeout.
	idle, _ := connectTLS(t, addr, ca.clientTLS(), "idle", 4, func(pk *packets.Packet) { pk.Connect.Keepalive = 60 })

	expectDropped(t, "silent", silent, silentStart, timeout)
	expectDropped(t, "partial ClientHello", partial, partialStart, timeout)
	expectDropped(t, "stalled handshake", stalled, stalledStart, timeout)
	waitFor(t, "unfinished handshakes to be forgotten", func() bool { return b.Stats().Connections == 1 })
	time.Sleep(timeout)
	idle.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	idle.expect(packets.Pingresp, 5*time.Second)
}

// helloOnlyConn passes the first write through and swallows the rest, so
// a tls.Client sends its ClientHello and nothing after it.
type helloOnlyConn struct {
	net.Conn
	writes int
}

func (c *helloOnlyConn) Write(p []byte) (int, error) {
	c.writes++
	if c.writes > 1 {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// mochi reads a TLS connection through a small buffer (tlsReadBufferSize):
// packets from smaller than it to several TLS records long, sent one by
// one and back to back, arrive whole.
func TestTLSSmallReadBuffer(t *testing.T) {
	ca := newTestCA(t)
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{cfg: func(c *Config) {
		c.Listeners = []ListenerConfig{ca.tlsListener(false, false, "")}
	}})
	tc := &trackedConn{l: b.extra[0]}
	if got := tc.ReadBufferSize(); got != tlsReadBufferSize {
		t.Fatalf("TLS connection read buffer %d, want %d", got, tlsReadBufferSize)
	}
	if got := (&trackedConn{l: b.listener}).ReadBufferSize(); got != 0 {
		t.Fatalf("plain connection read buffer %d, want 0 (mochi's option)", got)
	}

	c, _ := connectTLS(t, tlsListenerAddr(b), ca.clientTLS(), "big", 5)
	sizes := []int{1, tlsReadBufferSize - 20, tlsReadBufferSize, 1000, 16 << 10, 70000}
	var want [][]byte
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		want = append(want, p)
		c.publish(fmt.Sprintf("devices/d%d/telemetry", i), 1, uint16(i+1), p)
	}
	for range sizes {
		if pk := c.expect(packets.Puback, 5*time.Second); pk.ReasonCode != 0 {
			t.Fatalf("PUBACK 0x%02x", pk.ReasonCode)
		}
	}
	got := sink.stored()
	if len(got) != len(sizes) {
		t.Fatalf("stored %d records, want %d", len(got), len(sizes))
	}
	for i, r := range got {
		if !bytes.Equal(r.rec.Data, want[i]) {
			t.Errorf("record %d: %d bytes stored, want %d bytes of %q", i, len(r.rec.Data), len(want[i]), want[i][0])
		}
	}
}
