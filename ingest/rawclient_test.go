package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// rawClient speaks MQTT over a plain TCP connection using mochi's own
// packet codec, so tests can see exactly what the broker sends (reason
// codes, packet types, the connection closing) with no client library in
// between, and without adding an MQTT 5 client dependency.
type rawClient struct {
	t       testing.TB
	conn    net.Conn
	r       *bufio.Reader
	version byte
	id      string
}

// dialRaw connects and completes CONNECT/CONNACK; version is 4 (3.1.1) or 5.
func dialRaw(t testing.TB, addr net.Addr, id string, version byte, mod ...func(*packets.Packet)) (*rawClient, packets.Packet) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return connectRaw(t, conn, id, version, mod...)
}

// connectRaw completes CONNECT/CONNACK over conn (a TLS connection, say).
func connectRaw(t testing.TB, conn net.Conn, id string, version byte, mod ...func(*packets.Packet)) (*rawClient, packets.Packet) {
	t.Helper()
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: version, id: id}
	t.Cleanup(func() { _ = conn.Close() })
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			Clean:            true,
			Keepalive:        30,
			ClientIdentifier: id,
		},
	}
	for _, m := range mod {
		m(&pk)
	}
	c.send(pk)
	ack, err := c.read(5 * time.Second)
	if err != nil {
		t.Fatalf("%s: waiting for CONNACK: %v", id, err)
	}
	if ack.FixedHeader.Type != packets.Connack {
		t.Fatalf("%s: got packet type %d, want CONNACK", id, ack.FixedHeader.Type)
	}
	return c, ack
}

func (c *rawClient) send(pk packets.Packet) {
	c.t.Helper()
	if err := c.trySend(pk); err != nil {
		c.t.Fatalf("%s: send: %v", c.id, err)
	}
}

func (c *rawClient) trySend(pk packets.Packet) error {
	pk.ProtocolVersion = c.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrel:
		pk.FixedHeader.Qos = 1
		err = pk.PubrelEncode(&buf)
	case packets.Subscribe:
		pk.FixedHeader.Qos = 1
		err = pk.SubscribeEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	default:
		return fmt.Errorf("rawClient cannot encode packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		return err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = c.conn.Write(buf.Bytes())
	return err
}

// read returns the next packet, or an error (io.EOF when the broker closed
// the connection, a timeout when nothing came).
func (c *rawClient) read(timeout time.Duration) (packets.Packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var pk packets.Packet
	b, err := c.r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = c.version
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	case packets.Pingresp:
	default:
		err = fmt.Errorf("unexpected packet type %d", pk.FixedHeader.Type)
	}
	return pk, err
}

// expect reads the next packet and fails unless it has type typ.
func (c *rawClient) expect(typ byte, timeout time.Duration) packets.Packet {
	c.t.Helper()
	pk, err := c.read(timeout)
	if err != nil {
		c.t.Fatalf("%s: waiting for packet type %d: %v", c.id, typ, err)
	}
	if pk.FixedHeader.Type != typ {
		c.t.Fatalf("%s: got packet type %d (reason 0x%02x), want %d", c.id, pk.FixedHeader.Type, pk.ReasonCode, typ)
	}
	return pk
}

// expectClosed fails unless the broker closes the connection within
// timeout without sending anything but (for MQTT 5) a DISCONNECT.
func (c *rawClient) expectClosed(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pk, err := c.read(time.Until(deadline))
		if isClosed(err) {
			return
		}
		if err != nil {
			c.t.Fatalf("%s: want the connection closed, got %v", c.id, err)
		}
		if pk.FixedHeader.Type != packets.Disconnect {
			c.t.Fatalf("%s: want the connection closed, got packet type %d (reason 0x%02x)", c.id, pk.FixedHeader.Type, pk.ReasonCode)
		}
	}
}

func isClosed(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

func (c *rawClient) publish(topic string, qos byte, id uint16, payload []byte, props ...packets.UserProperty) {
	c.t.Helper()
	c.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic,
		PacketID:    id,
		Payload:     payload,
		Properties:  packets.Properties{User: props},
	})
}

func (c *rawClient) subscribe(filter string, qos byte) {
	c.t.Helper()
	c.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Subscribe},
		PacketID:    1,
		Filters:     packets.Subscriptions{{Filter: filter, Qos: qos}},
	})
	c.expect(packets.Suback, 5*time.Second)
}
