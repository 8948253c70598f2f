package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/shards"
)

func TestPublishStoresRecord(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{routes: []Route{
		{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"},
		{Filter: "json/#", Stream: "json", PartitionKey: "site-{payload.device.id}"},
		{Filter: "users/#", Stream: "users", PartitionKey: "{username}/{client_id}"},
	}})
	c, ack := dialRaw(t, b.Addr(), "dev-1", 5, func(pk *packets.Packet) {
		pk.Connect.UsernameFlag = true
		pk.Connect.Username = []byte("alice")
	})
	if got := ack.Properties.MaximumPacketSize; got != 1<<20+64<<10 {
		t.Errorf("CONNACK maximum packet size = %d, want %d", got, 1<<20+64<<10)
	}

	c.publish("devices/d1/telemetry", 1, 1, []byte("t=21"), packets.UserProperty{Key: "unit", Val: "C"})
	c.expect(packets.Puback, 5*time.Second)
	c.publish("json/x", 1, 2, []byte(`{"device":{"id":42}}`))
	c.expect(packets.Puback, 5*time.Second)
	c.publish("users/x", 2, 3, []byte("u"))
	rec := c.expect(packets.Pubrec, 5*time.Second)
	if rec.ReasonCode != 0 {
		t.Fatalf("PUBREC reason 0x%02x", rec.ReasonCode)
	}
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 3})
	c.expect(packets.Pubcomp, 5*time.Second)
	c.publish("devices/d2/telemetry", 0, 0, []byte("q0"))
	waitFor(t, "QoS 0 record", func() bool { return b.Stats().Stored == 4 })

	got := sink.stored()
	want := []struct {
		stream, key, topic, data string
		qos                      byte
		noWait                   bool
	}{
		{"telemetry", "d1", "devices/d1/telemetry", "t=21", 1, false},
		{"json", "site-42", "json/x", `{"device":{"id":42}}`, 1, false},
		{"users", "alice/dev-1", "users/x", "u", 2, false},
		{"telemetry", "d2", "devices/d2/telemetry", "q0", 0, true},
	}
	for i, w := range want {
		g := got[i]
		if g.stream != w.stream || g.rec.Key != w.key || g.rec.Topic != w.topic || string(g.rec.Data) != w.data ||
			g.rec.QoS != w.qos || g.opts.NoWait != w.noWait || g.rec.ClientID != "dev-1" {
			t.Errorf("record %d = stream %q key %q topic %q data %q qos %d nowait %v client %q; want %+v",
				i, g.stream, g.rec.Key, g.rec.Topic, g.rec.Data, g.rec.QoS, g.opts.NoWait, g.rec.ClientID, w)
		}
	}
	if p := got[0].rec.Props; len(p) != 1 || p[0].Key != "unit" || p[0].Value != "C" {
		t.Errorf("user properties = %+v, want unit=C", p)
	}
	if p := got[1].rec.Props; p != nil {
		t.Errorf("record without user properties has Props %+v", p)
	}
	s := b.Stats()
	if s.Received != 4 || s.Stored != 4 || s.Refused.Total() != 0 || s.Unrouted != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// The acknowledgement must wait for the sink: that is what makes a PUBACK
// mean "stored".
func TestAckWaitsForSink(t *testing.T) {
	for _, version := range []byte{4, 5} {
		for _, qos := range []byte{1, 2} {
			t.Run(fmt.Sprintf("v%d/qos%d", version, qos), func(t *testing.T) {
				entered := make(chan struct{}, 1)
				release := make(chan struct{})
				sink := &fakeSink{fn: func(context.Context, string, *shards.Record, shards.AppendOptions) error {
					entered <- struct{}{}
					<-release
					return nil
				}}
				b := startBroker(t, sink, brokerOpts{})
				c, _ := dialRaw(t, b.Addr(), "d", version)
				c.publish("devices/d/telemetry", qos, 7, []byte("x"))
				<-entered
				if pk, err := c.read(300 * time.Millisecond); err == nil {
					t.Fatalf("got packet type %d before the sink returned", pk.FixedHeader.Type)
				} else if isClosed(err) {
					t.Fatalf("connection closed while the sink was writing: %v", err)
				}
				close(release)
				want := packets.Puback
				if qos == 2 {
					want = packets.Pubrec
				}
				ack := c.expect(want, 5*time.Second)
				if ack.PacketID != 7 || ack.ReasonCode != 0 {
					t.Errorf("ack id %d reason 0x%02x", ack.PacketID, ack.ReasonCode)
				}
				if n := len(sink.stored()); n != 1 {
					t.Errorf("stored %d records, want 1", n)
				}
			})
		}
	}
}

// refusalCases maps sink errors to the MQTT 5 reason code they must give.
var refusalCases = []struct {
	name string
	err  error
	code byte
	stat func(RefusedStats) uint64
}{
	{"throttled", fmt.Errorf("shard 1: %w", shards.ErrThrottled), 0x97, func(r RefusedStats) uint64 { return r.QuotaExceeded }},
	{"full", shards.ErrFull, 0x97, func(r RefusedStats) uint64 { return r.QuotaExceeded }},
	{"too_large", shards.ErrTooLarge, 0x95, func(r RefusedStats) uint64 { return r.TooLarge }},
	{"invalid_key", shards.ErrInvalidKey, 0x99, func(r RefusedStats) uint64 { return r.PayloadFormat }},
	{"unavailable", shards.ErrUnavailable, 0x80, func(r RefusedStats) uint64 { return r.Unspecified }},
	{"no_stream", shards.ErrStreamNotFound, 0x80, func(r RefusedStats) uint64 { return r.Unspecified }},
	{"closed", shards.ErrClosed, 0x80, func(r RefusedStats) uint64 { return r.Unspecified }},
	{"canceled", context.Canceled, 0x80, func(r RefusedStats) uint64 { return r.Unspecified }},
	{"other", errors.New("disk on fire"), 0x80, func(r RefusedStats) uint64 { return r.Unspecified }},
}

// refusingSink refuses every record whose topic ends in "/refuse".
func refusingSink(err error) *fakeSink {
	return &fakeSink{fn: func(_ context.Context, _ string, rec *shards.Record, _ shards.AppendOptions) error {
		if len(rec.Topic) > 7 && rec.Topic[len(rec.Topic)-7:] == "/refuse" {
			return err
		}
		return nil
	}}
}

var refuseRoutes = []Route{{Filter: "devices/#", Stream: "telemetry", PartitionKey: "{client_id}"}}

// checkNotForwarded proves the refused publish never reached sub: pub sends
// a marker on an unrouted topic after the refusal, and the subscriber's
// next message must be that marker (mochi delivers in order per
// subscriber, and a forward of the refused publish would have been queued
// before the marker was even read).
func checkNotForwarded(t *testing.T, pub, sub *rawClient) {
	t.Helper()
	pub.publish("marker", 1, 99, []byte("m"))
	pub.expect(packets.Puback, 5*time.Second)
	pk := sub.expect(packets.Publish, 5*time.Second)
	if pk.TopicName != "marker" {
		t.Fatalf("subscriber got %q (%q) before the marker: a refused publish was forwarded", pk.TopicName, pk.Payload)
	}
}

func TestRefusalMQTT5ReasonCodes(t *testing.T) {
	for _, rc := range refusalCases {
		for _, qos := range []byte{1, 2} {
			t.Run(fmt.Sprintf("%s/qos%d", rc.name, qos), func(t *testing.T) {
				sink := refusingSink(rc.err)
				b := startBroker(t, sink, brokerOpts{routes: refuseRoutes})
				sub, _ := dialRaw(t, b.Addr(), "sub", 5)
				sub.subscribe("#", 0)
				c, _ := dialRaw(t, b.Addr(), "dev", 5)
				c.publish("devices/x/refuse", qos, 5, []byte("nope"))
				// QoS 2 gets a PUBREC, not mochi's PUBACK (issue #510).
				want := packets.Puback
				if qos == 2 {
					want = packets.Pubrec
				}
				ack := c.expect(want, 5*time.Second)
				if ack.PacketID != 5 || ack.ReasonCode != rc.code {
					t.Fatalf("ack id %d reason 0x%02x, want id 5 reason 0x%02x", ack.PacketID, ack.ReasonCode, rc.code)
				}
				if ack.Properties.ReasonString == "" {
					t.Error("refusal carries no reason string")
				}
				checkNotForwarded(t, c, sub)
				// The connection stays usable and the next publish is stored.
				c.publish("devices/x/ok", 1, 6, []byte("yes"))
				if ack := c.expect(packets.Puback, 5*time.Second); ack.ReasonCode != 0 {
					t.Fatalf("publish after refusal: reason 0x%02x", ack.ReasonCode)
				}
				s := b.Stats()
				if rc.stat(s.Refused) != 1 || s.Refused.Total() != 1 || s.Disconnected != 0 || s.Stored != 1 {
					t.Errorf("stats = %+v", s)
				}
				if n := len(sink.stored()); n != 1 {
					t.Errorf("sink stored %d, want 1", n)
				}
			})
		}
	}
}

// A refused QoS 2 flow is over: the broker holds nothing in flight for it,
// and the same packet id can be used again at once.
func TestRefusedQoS2PacketIDReusable(t *testing.T) {
	sink := refusingSink(shards.ErrThrottled)
	b := startBroker(t, sink, brokerOpts{routes: refuseRoutes})
	c, _ := dialRaw(t, b.Addr(), "dev", 5)
	c.publish("devices/x/refuse", 2, 9, []byte("a"))
	if ack := c.expect(packets.Pubrec, 5*time.Second); ack.ReasonCode != 0x97 {
		t.Fatalf("reason 0x%02x", ack.ReasonCode)
	}
	c.publish("devices/x/ok", 2, 9, []byte("b"))
	if ack := c.expect(packets.Pubrec, 5*time.Second); ack.ReasonCode != 0 {
		t.Fatalf("reuse of packet id after refusal: reason 0x%02x", ack.ReasonCode)
	}
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 9})
	c.expect(packets.Pubcomp, 5*time.Second)
	if n := len(sink.stored()); n != 1 {
		t.Errorf("stored %d, want 1", n)
	}
}

func TestRefusalMQTT311Disconnects(t *testing.T) {
	for _, rc := range refusalCases {
		for _, qos := range []byte{1, 2} {
			t.Run(fmt.Sprintf("%s/qos%d", rc.name, qos), func(t *testing.T) {
				sink := refusingSink(rc.err)
				b := startBroker(t, sink, brokerOpts{routes: refuseRoutes})
				sub, _ := dialRaw(t, b.Addr(), "sub", 4)
				sub.subscribe("#", 0)
				c, _ := dialRaw(t, b.Addr(), "dev", 4)
				c.publish("devices/x/refuse", qos, 5, []byte("nope"))
				// Nothing at all (no PUBACK, no DISCONNECT: 3.1.1 has no
				// server DISCONNECT), just the socket closing.
				pk, err := c.read(5 * time.Second)
				if !isClosed(err) {
					t.Fatalf("want the connection closed without a packet, got type %d, err %v", pk.FixedHeader.Type, err)
				}
				c2, _ := dialRaw(t, b.Addr(), "dev2", 4)
				checkNotForwarded(t, c2, sub)
				s := b.Stats()
				if rc.stat(s.Refused) != 1 || s.Disconnected != 1 || s.Stored != 0 {
					t.Errorf("stats = %+v", s)
				}
			})
		}
	}
}

func TestKeyTemplateFailureRefused(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{routes: []Route{
		{Filter: "json/#", Stream: "s", PartitionKey: "{payload.id}"},
		{Filter: "deep/#", Stream: "s", PartitionKey: "{topic.5}"},
	}})
	v5, _ := dialRaw(t, b.Addr(), "v5", 5)
	for i, tc := range []struct{ topic, payload string }{
		{"json/a", `{"other":1}`},
		{"json/a", `not json`},
		{"json/a", `{"id":null}`},
		{"deep/a", `x`},
	} {
		v5.publish(tc.topic, 1, uint16(i+1), []byte(tc.payload))
		if ack := v5.expect(packets.Puback, 5*time.Second); ack.ReasonCode != 0x99 {
			t.Errorf("%s %s: reason 0x%02x, want 0x99", tc.topic, tc.payload, ack.ReasonCode)
		}
	}
	v5.publish("json/a", 1, 10, []byte(`{"id":"k1"}`))
	if ack := v5.expect(packets.Puback, 5*time.Second); ack.ReasonCode != 0 {
		t.Errorf("valid payload: reason 0x%02x", ack.ReasonCode)
	}
	v3, _ := dialRaw(t, b.Addr(), "v3", 4)
	v3.publish("json/a", 1, 1, []byte(`{}`))
	v3.expectClosed(5 * time.Second)

	if got := sink.stored(); len(got) != 1 || got[0].rec.Key != "k1" {
		t.Errorf("stored %+v", got)
	}
	if s := b.Stats(); s.Refused.PayloadFormat != 5 || s.Disconnected != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// QoS 0 has no acknowledgement to refuse with: the publish is dropped and
// counted, the client stays connected, subscribers do not get it.
func TestQoS0RefusalDrops(t *testing.T) {
	for _, version := range []byte{4, 5} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			sink := refusingSink(shards.ErrThrottled)
			b := startBroker(t, sink, brokerOpts{routes: refuseRoutes})
			sub, _ := dialRaw(t, b.Addr(), "sub", 5)
			sub.subscribe("#", 0)
			c, _ := dialRaw(t, b.Addr(), "dev", version)
			for range 3 {
				c.publish("devices/x/refuse", 0, 0, []byte("dropped"))
			}
			c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
			c.expect(packets.Pingresp, 5*time.Second)
			checkNotForwarded(t, c, sub)
			s := b.Stats()
			if s.DroppedQoS0 != 3 || s.Refused.QuotaExceeded != 3 || s.Disconnected != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestUnroutedDeliveredNotStored(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{})
	sub, _ := dialRaw(t, b.Addr(), "sub", 4)
	sub.subscribe("devices/+/commands", 1)
	c, _ := dialRaw(t, b.Addr(), "ctl", 5)
	c.publish("devices/d1/commands", 1, 1, []byte("reboot"))
	c.expect(packets.Puback, 5*time.Second)
	pk := sub.expect(packets.Publish, 5*time.Second)
	if pk.TopicName != "devices/d1/commands" || string(pk.Payload) != "reboot" {
		t.Errorf("subscriber got %q %q", pk.TopicName, pk.Payload)
	}
	if n := len(sink.stored()); n != 0 {
		t.Errorf("unrouted publish stored (%d records)", n)
	}
	if s := b.Stats(); s.Unrouted != 1 || s.Received != 1 || s.Stored != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// Stored publishes are still forwarded to subscribers, after the ack.
func TestRoutedAlsoForwarded(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{})
	sub, _ := dialRaw(t, b.Addr(), "sub", 5)
	sub.subscribe("devices/#", 0)
	c, _ := dialRaw(t, b.Addr(), "d1", 4)
	c.publish("devices/d1/telemetry", 1, 1, []byte("v"))
	c.expect(packets.Puback, 5*time.Second)
	if pk := sub.expect(packets.Publish, 5*time.Second); string(pk.Payload) != "v" {
		t.Errorf("subscriber got %q", pk.Payload)
	}
}

func TestRefusalLogsAreRateLimited(t *testing.T) {
	logs := &logBuffer{}
	sink := refusingSink(shards.ErrThrottled)
	b := startBroker(t, sink, brokerOpts{routes: refuseRoutes, log: logs})
	c, _ := dialRaw(t, b.Addr(), "dev", 5)
	const n = 50
	for i := range n {
		c.publish("devices/x/refuse", 1, uint16(i+1), []byte("x"))
		c.expect(packets.Puback, 5*time.Second)
	}
	if got := b.Stats().Refused.QuotaExceeded; got != n {
		t.Fatalf("refused %d, want %d", got, n)
	}
	// The loop takes well under the one-second window on any machine
	// that runs these tests; allow one window boundary.
	if lines := logs.count(`"message":"publish refused"`); lines < 1 || lines > 2 {
		t.Errorf("%d refusal log lines for %d refusals, want 1 or 2", lines, n)
	}
	if lines := logs.count(`"level":"warn"`); lines > 6 {
		t.Errorf("%d warn lines in total for %d refusals (mochi's own lines must be rate limited too)", lines, n)
	}
}
