package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// keysOnDifferentShards returns two device ids whose topic-level keys fall
// in different halves of the hash space (different shards of a 2-shard
// stream).
func keysOnDifferentShards() (string, string) {
	a := "dev-a"
	half := shards.EvenRanges(2)[1][0]
	aHigh := shards.HashOf(a).Cmp(half) >= 0
	for i := 0; ; i++ {
		b := fmt.Sprintf("dev-b%d", i)
		if (shards.HashOf(b).Cmp(half) >= 0) != aHigh {
			return a, b
		}
	}
}

// With on_limit: backpressure the PUBACK waits for capacity (held, not
// refused, not lost), and a device flooding its shard does not slow a
// device on another shard. Past max_wait the publish is refused: MQTT 5
// gets 0x97, MQTT 3.1.1 is disconnected without a PUBACK.
func TestRateLimitBackpressureThroughMQTT(t *testing.T) {
	st := openStore(t, shards.StreamConfig{Name: "telemetry", Shards: 2, Rate: shards.RateConfig{
		RecordsPerSec: 10, OnLimit: shards.OnLimitBackpress, MaxWait: conf.Duration(5 * time.Second)}})
	b := startBroker(t, st, brokerOpts{routes: []Route{{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"}}})
	hot, cold := keysOnDifferentShards()

	flood := make(chan time.Duration, 1)
	go func() {
		c, _ := dialRaw(t, b.Addr(), hot, 5)
		start := time.Now()
		for i := range 20 {
			c.publish("devices/"+hot+"/telemetry", 1, uint16(i+1), []byte("x"))
			if ack := c.expect(packets.Puback, 10*time.Second); ack.ReasonCode != 0 {
				t.Errorf("hot publish %d refused with 0x%02x under backpressure", i, ack.ReasonCode)
			}
		}
		flood <- time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond) // the hot device is now being held
	c, _ := dialRaw(t, b.Addr(), cold, 4)
	start := time.Now()
	for i := range 5 {
		c.publish("devices/"+cold+"/telemetry", 1, uint16(i+1), []byte("y"))
		c.expect(packets.Puback, 5*time.Second)
	}
	coldTook := time.Since(start)
	hotTook := <-flood
	// 20 records at 10/s with a burst of 1 need about 1.9 s.
	if hotTook < 1500*time.Millisecond {
		t.Fatalf("20 records at 10/s acknowledged in %v: backpressure did not hold them", hotTook)
	}
	// The cold device's 5 records fit its own shard's burst and rate: they
	// must not wait behind the hot shard (which needs ~2 s).
	if coldTook > time.Second {
		t.Fatalf("a device on another shard took %v for 5 publishes while a neighbour flooded", coldTook)
	}
	var n int
	for _, recs := range readAll(t, st, "telemetry") {
		n += len(recs)
	}
	if n != 25 {
		t.Fatalf("stored %d records, want all 25 acknowledged", n)
	}
}

func TestRateLimitRefusalPastMaxWait(t *testing.T) {
	st := openStore(t, shards.StreamConfig{Name: "telemetry", Shards: 1, Rate: shards.RateConfig{
		RecordsPerSec: 1, OnLimit: shards.OnLimitBackpress, MaxWait: conf.Duration(100 * time.Millisecond)}})
	b := startBroker(t, st, brokerOpts{routes: []Route{{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"}}})

	v5, _ := dialRaw(t, b.Addr(), "v5", 5)
	v5.publish("devices/v5/telemetry", 1, 1, []byte("1"))
	if ack := v5.expect(packets.Puback, 5*time.Second); ack.ReasonCode != 0 {
		t.Fatalf("first publish refused: 0x%02x", ack.ReasonCode)
	}
	v5.publish("devices/v5/telemetry", 1, 2, []byte("2"))
	if ack := v5.expect(packets.Puback, 5*time.Second); ack.ReasonCode != 0x97 {
		t.Fatalf("publish past max_wait: reason 0x%02x, want 0x97 quota exceeded", ack.ReasonCode)
	}

	v3, _ := dialRaw(t, b.Addr(), "v3", 4)
	v3.publish("devices/v3/telemetry", 1, 1, []byte("3"))
	// The bucket is empty (v5 used it): an MQTT 3.1.1 client cannot get a
	// reason code, so it is disconnected and gets no PUBACK.
	v3.expectClosed(5 * time.Second)

	recs := readAll(t, st, "telemetry")["shardId-000000000000"]
	if len(recs) != 1 || string(recs[0].Data) != "1" {
		t.Fatalf("stored %d records; only the acknowledged one may be there", len(recs))
	}
}
