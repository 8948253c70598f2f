package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Raw-packet tests of protocol strictness: each sends bytes the client
// libraries would never produce and checks the exact answer, that nothing
// was stored, and that the refusal was counted.

// mqttString encodes an MQTT UTF-8 string (two-byte length prefix).
func mqttString(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

// varint encodes an MQTT variable byte integer.
func varint(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// packet frames body with the fixed-header byte first.
func packet(first byte, body ...[]byte) []byte {
	all := bytes.Join(body, nil)
	return append(append([]byte{first}, varint(len(all))...), all...)
}

// connectBytes builds a CONNECT; props is the MQTT 5 property block without
// its length (nil for 3.1.1).
func connectBytes(name string, level, flags byte, props []byte, id string) []byte {
	vh := append(mqttString(name), level, flags, 0, 30)
	if level == 5 {
		vh = append(append(vh, varint(len(props))...), props...)
	}
	return packet(0x10, vh, mqttString(id))
}

// publishBytes builds a PUBLISH of qos (packet id 1 for QoS > 0); props as
// for connectBytes.
func publishBytes(version, qos byte, topic string, props, payload []byte) []byte {
	vh := mqttString(topic)
	if qos > 0 {
		vh = append(vh, 0, 1)
	}
	if version == 5 {
		vh = append(append(vh, varint(len(props))...), props...)
	}
	return packet(0x30|qos<<1, vh, payload)
}

// dialBytes connects and writes b, with no CONNECT of its own.
func dialBytes(t *testing.T, addr net.Addr, version byte, b []byte) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: version, id: "raw"}
	c.write(b)
	return c
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readBytes returns the next whole packet as sent on the wire.
func (c *rawClient) readBytes(timeout time.Duration) ([]byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	first, err := c.r.ReadByte()
	if err != nil {
		return nil, err
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, err
	}
	return append(append([]byte{first}, varint(n)...), body...), nil
}

// expectBytes fails unless the next packet is exactly want.
func (c *rawClient) expectBytes(want []byte) {
	c.t.Helper()
	got, err := c.readBytes(5 * time.Second)
	if err != nil {
		c.t.Fatalf("want % x, got error %v", want, err)
	}
	if !bytes.Equal(got, want) {
		c.t.Fatalf("got % x, want % x", got, want)
	}
}

// expectEOF fails unless the broker closes the connection without sending
// anything more.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	got, err := c.readBytes(5 * time.Second)
	if err == nil {
		c.t.Fatalf("want the connection closed, got % x", got)
	}
	if !isClosed(err) {
		c.t.Fatalf("want the connection closed, got %v", err)
	}
}

// expectReason reads the next packet, which must have type typ and
// reason code, then (for DISCONNECT and refusing CONNACKs) the close.
func (c *rawClient) expectReason(typ, code byte) packets.Packet {
	c.t.Helper()
	pk := c.expect(typ, 5*time.Second)
	if pk.ReasonCode != code {
		c.t.Fatalf("packet type %d: reason 0x%02x, want 0x%02x", typ, pk.ReasonCode, code)
	}
	if typ == packets.Disconnect || (typ == packets.Connack && code >= 0x80) {
		c.expectEOF()
	}
	return pk
}

// v5Client connects an MQTT 5 client with raw bytes.
func v5Client(t *testing.T, addr net.Addr, id string) *rawClient {
	t.Helper()
	c := dialBytes(t, addr, 5, connectBytes("MQTT", 5, 0x02, nil, id))
	c.expectReason(packets.Connack, 0)
	c.id = id
	return c
}

func assertNothingStored(t *testing.T, sink *fakeSink, b *Broker) {
	t.Helper()
	if got := sink.stored(); len(got) != 0 {
		t.Fatalf("stored %d records, want none: %+v", len(got), got)
	}
	if s := b.Stats(); s.Stored != 0 {
		t.Fatalf("Stats.Stored = %d, want 0", s.Stored)
	}
}

// allRoute stores every publish, so "nothing stored" means something.
var allRoute = []Route{{Filter: "#", Stream: "all"}, {Filter: "$SYS/#", Stream: "all"}}

func TestStrictTopicAlias(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{routes: allRoute})

	// An empty topic with alias 5, never set up: Protocol Error 0x82.
	c := v5Client(t, b.Addr(), "alias-unknown")
	c.write(publishBytes(5, 1, "", []byte{0x23, 0, 5}, []byte("x")))
	c.expectReason(packets.Disconnect, 0x82)

	// Alias 17 is above the Topic Alias Maximum (16): 0x94.
	c = v5Client(t, b.Addr(), "alias-too-big")
	c.write(publishBytes(5, 1, "", []byte{0x23, 0, 17}, []byte("x")))
	c.expectReason(packets.Disconnect, 0x94)
	assertNothingStored(t, sink, b)
	waitFor(t, "two protocol errors counted", func() bool { return b.Stats().Limits.ProtocolError == 2 })

	// An alias set up with a topic, then used alone, still works.
	c = v5Client(t, b.Addr(), "alias-ok")
	c.write(publishBytes(5, 1, "a/b", []byte{0x23, 0, 3}, []byte("1")))
	c.expectReason(packets.Puback, 0)
	c.write(publishBytes(5, 1, "", []byte{0x23, 0, 3}, []byte("2")))
	c.expectReason(packets.Puback, 0)
	got := sink.stored()
	if len(got) != 2 || got[1].rec.Topic != "a/b" || string(got[1].rec.Data) != "2" {
		t.Fatalf("stored %+v, want two records on a/b", got)
	}
}

func TestStrictDuplicateProperties(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{routes: allRoute})

	// PUBLISH with two Payload Format Indicators: Protocol Error.
	c := v5Client(t, b.Addr(), "dup-publish")
	c.write(publishBytes(5, 1, "a/b", []byte{0x01, 1, 0x01, 1}, []byte("x")))
	c.expectReason(packets.Disconnect, 0x82)

	// Two user properties with the same key are allowed.
	c = v5Client(t, b.Addr(), "dup-user")
	user := append(append([]byte{0x26}, mqttString("k")...), mqttString("v")...)
	c.write(publishBytes(5, 1, "a/b", append(append([]byte{}, user...), user...), []byte("x")))
	c.expectReason(packets.Puback, 0)
	if got := sink.stored(); len(got) != 1 || len(got[0].rec.Props) != 2 {
		t.Fatalf("stored %+v, want one record with two user properties", got)
	}

	// CONNECT with two Session Expiry Intervals: CONNACK 0x82, closed.
	sei := []byte{0x11, 0, 0, 0, 10}
	c = dialBytes(t, b.Addr(), 5, connectBytes("MQTT", 5, 0x02, append(append([]byte{}, sei...), sei...), "dup-connect"))
	c.expectReason(packets.Connack, 0x82)
	waitFor(t, "two protocol errors counted", func() bool { return b.Stats().Limits.ProtocolError == 2 })
}

func TestStrictZeroConnectProperties(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{})
	for name, props := range map[string][]byte{
		"receive maximum 0":     {0x21, 0, 0},
		"maximum packet size 0": {0x27, 0, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialBytes(t, b.Addr(), 5, connectBytes("MQTT", 5, 0x02, props, "zero"))
			c.expectReason(packets.Connack, 0x82)
		})
	}
	// Non-zero values are fine.
	c := dialBytes(t, b.Addr(), 5, connectBytes("MQTT", 5, 0x02, []byte{0x21, 0, 1, 0x27, 0, 1, 0, 0}, "nonzero"))
	c.expectReason(packets.Connack, 0)
}

func TestStrictSysPublish(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{routes: allRoute})

	c := v5Client(t, b.Addr(), "sys5")
	c.write(publishBytes(5, 1, "$SYS/broker/x", nil, []byte("x")))
	pk := c.expectReason(packets.Puback, 0x87)
	if pk.PacketID != 1 {
		t.Fatalf("PUBACK for packet %d, want 1", pk.PacketID)
	}
	c.write(publishBytes(5, 2, "$SYS/broker/x", nil, []byte("x")))
	c.expectReason(packets.Pubrec, 0x87)
	c.write(publishBytes(5, 0, "$SYS/broker/x", nil, []byte("x")))
	// Still connected, and other publishes go through.
	c.write(publishBytes(5, 1, "a/b", nil, []byte("y")))
	c.expectReason(packets.Puback, 0)

	// A bare $share is no topic name: 0x90.
	c.write(publishBytes(5, 1, "$share", nil, []byte("x")))
	c.expectReason(packets.Puback, 0x90)

	// MQTT 3.1.1 QoS 1: no negative PUBACK exists, so the connection is
	// closed without one.
	c3 := dialBytes(t, b.Addr(), 4, connectBytes("MQTT", 4, 0x02, nil, "sys3"))
	c3.expectBytes([]byte{0x20, 0x02, 0x00, 0x00})
	c3.write(publishBytes(4, 1, "$SYS/broker/x", nil, []byte("x")))
	c3.expectEOF()

	if got := sink.stored(); len(got) != 1 || got[0].rec.Topic != "a/b" {
		t.Fatalf("stored %+v, want only a/b", got)
	}
	s := b.Stats()
	if s.Limits.SysPublish != 4 || s.Limits.TopicName != 1 {
		t.Fatalf("Limits = %+v, want SysPublish 4, TopicName 1", s.Limits)
	}
}

// TestStrictV3ConnackCodes: a client that is not MQTT 5 gets a 3.1.1 return
// code (§3.2.2.3: 1..5) in a 3.1.1 CONNACK, or for a malformed CONNECT the
// connection closed without a CONNACK.
func TestStrictV3ConnackCodes(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{})
	for _, tc := range []struct {
		name    string
		connect []byte
		want    []byte // nil: closed without a CONNACK
	}{
		{"protocol level 3 with name MQTT", connectBytes("MQTT", 3, 0x02, nil, "a"), []byte{0x20, 0x02, 0x00, 0x01}},
		{"protocol level 6", connectBytes("MQTT", 6, 0x02, nil, "a"), []byte{0x20, 0x02, 0x00, 0x01}},
		{"unknown protocol name", connectBytes("MQXX", 4, 0x02, nil, "a"), []byte{0x20, 0x02, 0x00, 0x01}},
		{"empty client id without clean session", connectBytes("MQTT", 4, 0x00, nil, ""), []byte{0x20, 0x02, 0x00, 0x02}},
		{"reserved flag set", connectBytes("MQTT", 4, 0x03, nil, "a"), nil},
		{"accepted", connectBytes("MQTT", 4, 0x02, nil, "a"), []byte{0x20, 0x02, 0x00, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialBytes(t, b.Addr(), 4, tc.connect)
			if tc.want == nil {
				c.expectEOF()
				return
			}
			c.expectBytes(tc.want)
		})
	}
}

// TestStrictV3BadPassword: 3.1.1 return code 4 (bad user name or password),
// not 5, and 0x86 for MQTT 5.
func TestStrictV3BadPassword(t *testing.T) {
	b, err := New(testConfig(), defaultRoutes, &fakeSink{}, Options{Passwords: fakePasswords{"u": "right"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	// CONNECT with user "u" and a wrong password (flags: user name,
	// password, clean start).
	login := func(level byte) []byte {
		full := connectBytes("MQTT", level, 0xC2, nil, "a")
		return packet(0x10, full[2:], append(mqttString("u"), mqttString("wrong")...))
	}
	c := dialBytes(t, b.Addr(), 4, login(4))
	c.expectBytes([]byte{0x20, 0x02, 0x00, 0x04})
	c = dialBytes(t, b.Addr(), 5, login(5))
	c.expectReason(packets.Connack, 0x86)
}

// FuzzPropertiesDecode checks the patched property decoder against an
// independent walk of the same bytes: whenever the walk finds a property
// that may not repeat twice, or a Receive Maximum or Maximum Packet Size
// of 0, decoding must fail; it must never panic.
func FuzzPropertiesDecode(f *testing.F) {
	f.Add(byte(packets.Publish), []byte{0x01, 1, 0x01, 1})
	f.Add(byte(packets.Connect), []byte{0x11, 0, 0, 0, 10, 0x11, 0, 0, 0, 10})
	f.Add(byte(packets.Connect), []byte{0x21, 0, 0})
	f.Add(byte(packets.Connect), []byte{0x27, 0, 0, 0, 0, 0x26, 0, 1, 'k', 0, 1, 'v'})
	f.Add(byte(packets.Publish), []byte{0x26, 0, 1, 'k', 0, 1, 'v', 0x26, 0, 1, 'k', 0, 1, 'v', 0x23, 0, 1})
	f.Fuzz(func(t *testing.T, pkt byte, props []byte) {
		pkt = []byte{packets.Connect, packets.Publish, packets.Subscribe, packets.Disconnect}[pkt%4]
		var p packets.Properties
		_, err := p.Decode(pkt, bytes.NewBuffer(append(varint(len(props)), props...)))
		if bad, ok := walkProperties(pkt, props); ok && bad != "" && err == nil {
			t.Fatalf("%s accepted in packet type %d: % x", bad, pkt, props)
		}
	})
}

// walkProperties parses a property block on its own; ok is false where it
// cannot (an unknown property, truncated data), bad names the first rule
// broken.
func walkProperties(pkt byte, b []byte) (bad string, ok bool) {
	seen := map[byte]bool{}
	for len(b) > 0 {
		k := b[0]
		b = b[1:]
		var n int
		switch k {
		case 1, 23, 25, 36, 37, 40, 41, 42:
			n = 1
		case 19, 33, 34, 35:
			n = 2
		case 2, 17, 24, 39:
			n = 4
		case 11:
			_, used, err := packets.DecodeLength(bytes.NewBuffer(b))
			if err != nil {
				return "", false
			}
			n = used
		case 3, 8, 9, 18, 21, 22, 26, 28, 31:
			if len(b) < 2 {
				return "", false
			}
			n = 2 + (int(b[0])<<8 | int(b[1]))
		case 38:
			if len(b) < 2 {
				return "", false
			}
			l1 := 2 + (int(b[0])<<8 | int(b[1]))
			if len(b) < l1+2 {
				return "", false
			}
			n = l1 + 2 + (int(b[l1])<<8 | int(b[l1+1]))
		default:
			return "", false
		}
		if len(b) < n {
			return "", false
		}
		val := b[:n]
		b = b[n:]
		if bad != "" {
			continue
		}
		repeatable := k == 38 || (k == 11 && pkt == packets.Publish)
		switch {
		case seen[k] && !repeatable:
			bad = fmt.Sprintf("property %d twice", k)
		case k == 33 && val[0]|val[1] == 0:
			bad = "receive maximum 0"
		case k == 39 && val[0]|val[1]|val[2]|val[3] == 0:
			bad = "maximum packet size 0"
		}
		seen[k] = true
	}
	return bad, true
}
