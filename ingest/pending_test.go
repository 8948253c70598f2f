package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/shards"
)

// heldSink is a DeferredSink whose completions wait until the test
// releases them, in any order: it stands for a log whose fsync has not
// returned yet.
type heldSink struct {
	fakeSink
	mu      sync.Mutex
	held    []heldAppend
	arrived chan struct{}
}

type heldAppend struct {
	rec shards.Record
	c   shards.Completion
}

func newHeldSink() *heldSink { return &heldSink{arrived: make(chan struct{}, 1024)} }

func (s *heldSink) AppendDeferred(ctx context.Context, stream string, rec *shards.Record, o shards.AppendOptions, c shards.Completion) error {
	r := *rec
	r.Data = append([]byte(nil), rec.Data...) // the caller's buffer is not ours after return
	s.mu.Lock()
	s.held = append(s.held, heldAppend{rec: r, c: c})
	s.mu.Unlock()
	s.arrived <- struct{}{}
	return nil
}

func (s *heldSink) waitHeld(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %d deferred appends", n)
		}
	}
}

// complete reports append i (in arrival order) with err.
func (s *heldSink) complete(i int, err error) {
	s.mu.Lock()
	h := s.held[i]
	s.mu.Unlock()
	h.c.Appended(shards.Appended{ShardID: "shardId-000000000000", Seq: uint64(i + 1)}, err)
}

func expectNothing(t *testing.T, c *rawClient, d time.Duration) {
	t.Helper()
	pk, err := c.read(d)
	if err == nil {
		t.Fatalf("%s: got packet type %d (id %d) before the sink reported the record durable", c.id, pk.FixedHeader.Type, pk.PacketID)
	}
	if isClosed(err) {
		t.Fatalf("%s: connection closed: %v", c.id, err)
	}
}

// The PUBACK means durable: with a deferred sink it leaves only once the
// sink reports the record committed, never when the hook returns. And the
// client's next publish is read while the first still waits.
func TestDeferredAckWaitsForCommit(t *testing.T) {
	sink := newHeldSink()
	b := startBroker(t, sink, brokerOpts{})
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			before := len(sink.held)
			c, _ := dialRaw(t, b.Addr(), fmt.Sprintf("dev-v%d", v), v)
			c.publish("devices/d1/telemetry", 1, 1, []byte("a"))
			c.publish("devices/d1/telemetry", 1, 2, []byte("b"))
			sink.waitHeld(t, 2) // both read: the first did not block the read loop
			expectNothing(t, c, 200*time.Millisecond)
			sink.complete(before, nil)
			if pk := c.expect(packets.Puback, 5*time.Second); pk.PacketID != 1 || pk.ReasonCode != 0 {
				t.Fatalf("PUBACK id %d reason 0x%02x, want id 1, 0", pk.PacketID, pk.ReasonCode)
			}
			expectNothing(t, c, 100*time.Millisecond)
			sink.complete(before+1, nil)
			if pk := c.expect(packets.Puback, 5*time.Second); pk.PacketID != 2 {
				t.Fatalf("PUBACK id %d, want 2", pk.PacketID)
			}
		})
	}
	if s := b.Stats(); s.Stored != 4 || s.Received != 4 {
		t.Fatalf("Stats %+v: want 4 received and stored", s)
	}
}

// Answers leave in the order the publishes arrived, even when the sink
// reports them in another order (records of one client in different
// shards); a refusal takes its place in that order.
func TestDeferredAcksInArrivalOrder(t *testing.T) {
	sink := newHeldSink()
	b := startBroker(t, sink, brokerOpts{})
	c, _ := dialRaw(t, b.Addr(), "dev-order", 5)
	const n = 5
	for i := 1; i <= n; i++ {
		c.publish(fmt.Sprintf("devices/k%d/telemetry", i), 1, uint16(i), []byte("x"))
	}
	sink.waitHeld(t, n)
	for i := n - 1; i >= 1; i-- {
		var err error
		if i == 2 {
			err = fmt.Errorf("refused: %w", shards.ErrThrottled)
		}
		sink.complete(i, err)
	}
	expectNothing(t, c, 200*time.Millisecond)
	sink.complete(0, nil)
	for i := 1; i <= n; i++ {
		pk := c.expect(packets.Puback, 5*time.Second)
		want := byte(0)
		if i == 3 {
			want = packets.ErrQuotaExceeded.Code
		}
		if pk.PacketID != uint16(i) || pk.ReasonCode != want {
			t.Fatalf("answer %d: PUBACK id %d reason 0x%02x, want id %d reason 0x%02x", i, pk.PacketID, pk.ReasonCode, i, want)
		}
	}
}

// A refused deferred publish gets what a refused waited-for one gets: an
// MQTT 3.1.1 client is disconnected (it resends), an MQTT 5 QoS 2 publish
// gets PUBREC with the reason.
func TestDeferredRefusals(t *testing.T) {
	sink := newHeldSink()
	b := startBroker(t, sink, brokerOpts{})
	c3, _ := dialRaw(t, b.Addr(), "dev-v3", 4)
	c3.publish("devices/a/telemetry", 1, 1, []byte("x"))
	sink.waitHeld(t, 1)
	sink.complete(0, shards.ErrFull)
	c3.expectClosed(5 * time.Second)

	c5, _ := dialRaw(t, b.Addr(), "dev-v5", 5)
	c5.publish("devices/a/telemetry", 2, 7, []byte("x"))
	sink.waitHeld(t, 1)
	sink.complete(1, shards.ErrFull)
	if pk := c5.expect(packets.Pubrec, 5*time.Second); pk.PacketID != 7 || pk.ReasonCode != packets.ErrQuotaExceeded.Code {
		t.Fatalf("PUBREC id %d reason 0x%02x, want 7, 0x97", pk.PacketID, pk.ReasonCode)
	}
	s := b.Stats()
	if s.Refused.QuotaExceeded != 2 || s.Disconnected != 1 || s.Stored != 0 {
		t.Fatalf("Stats %+v: want 2 refused for quota, 1 disconnected, none stored", s)
	}
}

// A client that sends more QoS 1 publishes than the receive maximum
// without waiting is not disconnected: its read loop waits for answers.
func TestDeferredReceiveMaximumWaits(t *testing.T) {
	sink := newHeldSink()
	b := startBroker(t, sink, brokerOpts{cfg: func(c *Config) { c.ReceiveMaximum = 4 }})
	c, _ := dialRaw(t, b.Addr(), "dev-flood", 4)
	const n = 10
	for i := 1; i <= n; i++ {
		c.publish("devices/f/telemetry", 1, uint16(i), []byte("x"))
	}
	sink.waitHeld(t, 4)
	select {
	case <-sink.arrived:
		t.Fatal("a fifth publish was taken while four were unanswered (receive maximum 4)")
	case <-time.After(100 * time.Millisecond):
	}
	for i := range n {
		if i >= 4 {
			sink.waitHeld(t, 1)
		}
		sink.complete(i, nil)
		if pk := c.expect(packets.Puback, 5*time.Second); pk.PacketID != uint16(i+1) {
			t.Fatalf("PUBACK id %d, want %d", pk.PacketID, i+1)
		}
	}
}
