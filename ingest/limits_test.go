package ingest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/internal/conf"
)

func TestMaxConnections(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) { c.MaxConnections = 2 }})
	v5Client(t, b.Addr(), "one")
	v5Client(t, b.Addr(), "two")

	c := dialBytes(t, b.Addr(), 5, connectBytes("MQTT", 5, 0x02, nil, "three"))
	c.expectReason(packets.Connack, 0x97)
	c = dialBytes(t, b.Addr(), 4, connectBytes("MQTT", 4, 0x02, nil, "three"))
	c.expectBytes([]byte{0x20, 0x02, 0x00, 0x03}) // 3.1.1: server unavailable
	c.expectEOF()

	// A client whose id is connected takes its own place over.
	v5Client(t, b.Addr(), "two")
	if got := b.Stats().Limits.Connections; got != 2 {
		t.Fatalf("Limits.Connections = %d, want 2", got)
	}
}

// subscribeFilters sends one SUBSCRIBE with the filters and returns the
// SUBACK's reason codes.
func (c *rawClient) subscribeFilters(id uint16, filters ...string) []byte {
	c.t.Helper()
	subs := make(packets.Subscriptions, len(filters))
	for i, f := range filters {
		subs[i] = packets.Subscription{Filter: f, Qos: 1}
	}
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: id, Filters: subs})
	return c.expect(packets.Suback, 5*time.Second).ReasonCodes
}

func TestMaxSubscriptions(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) { c.MaxSubscriptions = 3 }})

	c5, _ := dialRaw(t, b.Addr(), "subs5", 5)
	if got := c5.subscribeFilters(1, "a", "b", "c", "d", "e"); string(got) != "\x01\x01\x01\x97\x97" {
		t.Fatalf("SUBACK codes % x, want 01 01 01 97 97", got)
	}
	// Re-subscribing held filters replaces them: not counted again.
	if got := c5.subscribeFilters(2, "a", "c", "f"); string(got) != "\x01\x01\x97" {
		t.Fatalf("SUBACK codes % x, want 01 01 97", got)
	}

	c3, _ := dialRaw(t, b.Addr(), "subs3", 4)
	if got := c3.subscribeFilters(1, "a", "b", "c", "d"); string(got) != "\x01\x01\x01\x80" {
		t.Fatalf("3.1.1 SUBACK codes % x, want 01 01 01 80", got)
	}
	if got := b.Stats().Limits.Subscriptions; got != 4 {
		t.Fatalf("Limits.Subscriptions = %d, want 4", got)
	}
	if got := atomic.LoadInt64(&b.server.Info.Subscriptions); got != 6 {
		t.Fatalf("broker holds %d subscriptions, want 6", got)
	}
}

func TestMaxSubscriptionsTotal(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) { c.MaxSubscriptions = 3; c.MaxSubsTotal = 4 }})
	a, _ := dialRaw(t, b.Addr(), "a", 5)
	if got := a.subscribeFilters(1, "a", "b", "c"); string(got) != "\x01\x01\x01" {
		t.Fatalf("SUBACK codes % x, want 01 01 01", got)
	}
	c, _ := dialRaw(t, b.Addr(), "c", 5)
	if got := c.subscribeFilters(1, "a", "b"); string(got) != "\x01\x97" {
		t.Fatalf("SUBACK codes % x, want 01 97", got)
	}
	if got := c.subscribeFilters(2, "a"); string(got) != "\x01" {
		t.Fatalf("re-subscribe: SUBACK codes % x, want 01", got)
	}
	if s := b.Stats().Limits; s.SubsTotal != 1 || s.Subscriptions != 0 {
		t.Fatalf("Limits %+v, want SubsTotal 1, Subscriptions 0", s)
	}
}

// publishRetained sends a retained QoS 1 publish and returns the PUBACK's
// reason code.
func (c *rawClient) publishRetained(topic string, id uint16, payload string) byte {
	c.t.Helper()
	c.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true},
		TopicName:   topic,
		PacketID:    id,
		Payload:     []byte(payload),
	})
	return c.expect(packets.Puback, 5*time.Second).ReasonCode
}

func TestRetainedCap(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{routes: allRoute, cfg: func(c *Config) {
		c.Retained = RetainedLimits{MaxMessages: 3, MaxBytes: conf.KiB}
	}})
	c, _ := dialRaw(t, b.Addr(), "ret", 5)
	for i, topic := range []string{"r/1", "r/2", "r/3"} {
		if code := c.publishRetained(topic, uint16(i+1), "x"); code != 0 {
			t.Fatalf("%s: PUBACK 0x%02x, want 0", topic, code)
		}
	}
	waitFor(t, "3 retained", func() bool { return b.Stats().Limits.RetainedMessages == 3 })
	// A fourth topic is over max_messages: 0x97, not stored, not retained.
	if code := c.publishRetained("r/4", 4, "x"); code != 0x97 {
		t.Fatalf("r/4: PUBACK 0x%02x, want 0x97", code)
	}
	// Replacing and clearing always work.
	if code := c.publishRetained("r/1", 5, "yy"); code != 0 {
		t.Fatalf("replace r/1: PUBACK 0x%02x, want 0", code)
	}
	if code := c.publishRetained("r/2", 6, ""); code != 0 {
		t.Fatalf("clear r/2: PUBACK 0x%02x, want 0", code)
	}
	waitFor(t, "2 retained", func() bool { return b.Stats().Limits.RetainedMessages == 2 })
	// Now there is room for one more, but not for 1 KiB of bytes.
	big := strings.Repeat("b", 1020) // 9 bytes held + 3 + 1020 > 1 KiB
	if code := c.publishRetained("r/5", 7, big); code != 0x97 {
		t.Fatalf("r/5 (1020 B): PUBACK 0x%02x, want 0x97", code)
	}
	if code := c.publishRetained("r/5", 8, "z"); code != 0 {
		t.Fatalf("r/5: PUBACK 0x%02x, want 0", code)
	}
	// QoS 0 over the cap: dropped and counted; 3.1.1 QoS 1: disconnected.
	c.publish("r/6", 0, 0, []byte("x"))
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}, TopicName: "r/6", Payload: []byte("x")})
	c3, _ := dialRaw(t, b.Addr(), "ret3", 4)
	c3.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}, TopicName: "r/7", PacketID: 1, Payload: []byte("x")})
	c3.expectClosed(5 * time.Second)

	waitFor(t, "refusals counted", func() bool { return b.Stats().Refused.Retained == 4 })
	s := b.Stats()
	if s.DroppedQoS0 != 1 || s.Disconnected != 1 || s.Limits.RetainedMessages != 3 {
		t.Fatalf("Stats %+v: want DroppedQoS0 1, Disconnected 1, 3 retained", s)
	}
	for _, r := range sink.stored() {
		if r.rec.Topic == "r/4" || r.rec.Topic == "r/7" || (r.rec.Topic == "r/5" && len(r.rec.Data) > 1) {
			t.Fatalf("a refused publish was stored: %+v", r)
		}
	}
	if _, ok := b.server.Topics.Retained.Get("r/4"); ok {
		t.Fatal("r/4 was retained")
	}
}

// TestRetainedDeliveryComplete: a new subscriber gets every one of 20,000
// retained messages, though its outbound queue holds 32 and its in-flight
// window 64 (upstream mochi dropped all but ~1,200).
func TestRetainedDeliveryComplete(t *testing.T) {
	const n = 20000
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) {
		c.Retained = RetainedLimits{MaxMessages: n, MaxBytes: 16 * conf.MiB}
	}})
	pub, _ := dialRaw(t, b.Addr(), "pub", 4)
	for i := range n {
		pub.send(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
			TopicName:   fmt.Sprintf("ret/%d", i),
			Payload:     []byte("0123456789"),
		})
	}
	waitFor(t, "all retained", func() bool { return b.Stats().Limits.RetainedMessages == n })

	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			sub, _ := dialRaw(t, b.Addr(), fmt.Sprintf("sub%d", qos), 5)
			sub.subscribe("ret/#", qos)
			seen := make(map[string]bool, n)
			for len(seen) < n {
				pk, err := sub.read(10 * time.Second)
				if err != nil {
					t.Fatalf("after %d of %d retained messages: %v", len(seen), n, err)
				}
				if pk.FixedHeader.Type != packets.Publish || !pk.FixedHeader.Retain {
					t.Fatalf("got packet type %d retain %v, want a retained PUBLISH", pk.FixedHeader.Type, pk.FixedHeader.Retain)
				}
				seen[pk.TopicName] = true
				if pk.FixedHeader.Qos == 1 {
					sub.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
				}
			}
		})
	}
}

func TestMaxQoS2Pending(t *testing.T) {
	sink := &fakeSink{}
	b := startBroker(t, sink, brokerOpts{routes: allRoute, cfg: func(c *Config) { c.MaxQoS2Pending = 2 }})
	c, _ := dialRaw(t, b.Addr(), "q2", 5)
	for id := uint16(1); id <= 2; id++ {
		c.publish("a/b", 2, id, []byte("x"))
		if pk := c.expect(packets.Pubrec, 5*time.Second); pk.ReasonCode != 0 {
			t.Fatalf("PUBREC 0x%02x, want 0", pk.ReasonCode)
		}
	}
	c.publish("a/b", 2, 3, []byte("x"))
	if pk := c.expect(packets.Pubrec, 5*time.Second); pk.ReasonCode != 0x97 || pk.PacketID != 3 {
		t.Fatalf("PUBREC id %d 0x%02x, want id 3 0x97", pk.PacketID, pk.ReasonCode)
	}
	// Releasing one makes room again.
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 1})
	c.expect(packets.Pubcomp, 5*time.Second)
	c.publish("a/b", 2, 4, []byte("x"))
	if pk := c.expect(packets.Pubrec, 5*time.Second); pk.ReasonCode != 0 {
		t.Fatalf("PUBREC 0x%02x, want 0", pk.ReasonCode)
	}

	c3, _ := dialRaw(t, b.Addr(), "q2v3", 4)
	for id := uint16(1); id <= 2; id++ {
		c3.publish("a/b", 2, id, []byte("x"))
		c3.expect(packets.Pubrec, 5*time.Second)
	}
	c3.publish("a/b", 2, 3, []byte("x"))
	c3.expectClosed(5 * time.Second)

	if s := b.Stats(); s.Refused.QoS2Pending != 2 || len(sink.stored()) != 5 {
		t.Fatalf("Refused.QoS2Pending %d, stored %d; want 2 and 5", s.Refused.QoS2Pending, len(sink.stored()))
	}
}

func TestSessionExpiryMax(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{cfg: func(c *Config) { c.SessionExpiryMax = conf.Duration(time.Second) }})

	// MQTT 5: a longer session expiry is clamped, and CONNACK says so.
	_, ack := dialRaw(t, b.Addr(), "v5", 5, func(pk *packets.Packet) {
		pk.Properties.SessionExpiryInterval = 86400
		pk.Properties.SessionExpiryIntervalFlag = true
	})
	if !ack.Properties.SessionExpiryIntervalFlag || ack.Properties.SessionExpiryInterval != 1 {
		t.Fatalf("CONNACK session expiry %v %d, want 1", ack.Properties.SessionExpiryIntervalFlag, ack.Properties.SessionExpiryInterval)
	}

	// MQTT 3.1.1 clean_session=false: the session, with its
	// subscriptions, is gone after session_expiry_max.
	persistent := func(pk *packets.Packet) { pk.Connect.Clean = false }
	c, _ := dialRaw(t, b.Addr(), "v3", 4, persistent)
	c.subscribe("x/#", 1)
	_ = c.conn.Close()
	waitFor(t, "the 3.1.1 session to expire", func() bool {
		_, ok := b.server.Clients.Get("v3")
		return !ok
	})
	if got := atomic.LoadInt64(&b.server.Info.Subscriptions); got != 0 {
		t.Fatalf("%d subscriptions left after the session expired, want 0", got)
	}
	if s := b.server.Topics.Subscribers("x/y"); len(s.Subscriptions) != 0 {
		t.Fatalf("expired session still subscribed: %+v", s.Subscriptions)
	}
	_, ack = dialRaw(t, b.Addr(), "v3", 4, persistent)
	if ack.SessionPresent {
		t.Fatal("session present after expiry")
	}
}

func TestLimitsConfig(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.MaxConnections != DefaultMaxConnections || c.MaxSubscriptions != DefaultMaxSubscriptions ||
		c.Retained.MaxMessages != DefaultRetainedMessages || c.Retained.MaxBytes != DefaultRetainedBytes ||
		c.MaxSubsTotal != DefaultMaxSubsTotal || c.MaxQoS2Pending != DefaultMaxQoS2Pending || c.SessionExpiryMax != DefaultSessionExpiryMax {
		t.Fatalf("defaults: %+v", c)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	c.MaxConnections = -1
	c.MaxSubscriptions = -1
	c.MaxSubsTotal = -1
	c.Retained = RetainedLimits{MaxMessages: -1, MaxBytes: 10}
	c.MaxQoS2Pending = 70000
	c.SessionExpiryMax = conf.Duration(time.Millisecond)
	var got []string
	for _, err := range c.Validate() {
		got = append(got, err.Error())
	}
	for _, key := range []string{"max_connections", "max_subscriptions", "max_subscriptions_total", "retained.max_messages", "retained.max_bytes", "max_qos2_pending", "session_expiry_max"} {
		found := false
		for _, e := range got {
			found = found || strings.HasPrefix(e, key+":")
		}
		if !found {
			t.Errorf("no error for %s in %q", key, got)
		}
	}
}
