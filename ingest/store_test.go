package ingest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// openStore opens a real store in a temporary directory, closed after the
// broker (cleanups run last-registered first, and startBroker registers
// after this).
func openStore(t *testing.T, streams ...shards.StreamConfig) *shards.Store {
	t.Helper()
	st, err := shards.Open(t.TempDir(), shards.Options{
		Durability:      shards.Durability{Fsync: shards.FsyncAlways},
		Streams:         streams,
		Logger:          zerolog.Nop(),
		NoRetentionLoop: true,
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

// readAll returns every record of a stream, keyed by shard, in order.
func readAll(t *testing.T, st *shards.Store, stream string) map[string][]shards.Record {
	t.Helper()
	s, err := st.Stream(stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]shards.Record{}
	for _, info := range s.Shards() {
		sh, err := s.Shard(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := sh.Read(sh.TrimHorizon(), 10000, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		out[info.ID] = recs
	}
	return out
}

// Publishes from MQTT 3.1.1 and 5 clients through the real store: every
// acknowledged publish is readable, per-device order is kept, a device's
// records share a shard, and the MQTT metadata is stored.
func TestWithRealStore(t *testing.T) {
	st := openStore(t,
		shards.StreamConfig{Name: "telemetry", Shards: 4, Rate: shards.RateConfig{OnLimit: shards.OnLimitReject}},
		shards.StreamConfig{Name: "small", Shards: 1, MaxRecordSize: 64, Rate: shards.RateConfig{OnLimit: shards.OnLimitReject}},
		shards.StreamConfig{Name: "slow", Shards: 1, Rate: shards.RateConfig{RecordsPerSec: 1, OnLimit: shards.OnLimitReject}},
	)
	b := startBroker(t, st, brokerOpts{maxRec: 64 << 10, routes: []Route{
		{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"},
		{Filter: "small/#", Stream: "small"},
		{Filter: "slow/#", Stream: "slow"},
		{Filter: "ghost/#", Stream: "no-such-stream"},
	}})

	const perDevice = 20
	devices := []struct {
		id      string
		version byte
	}{{"d3", 4}, {"d5", 5}, {"d5b", 5}, {"d3b", 4}}
	for _, d := range devices {
		c, _ := dialRaw(t, b.Addr(), d.id, d.version)
		for i := range perDevice {
			var props []packets.UserProperty
			if d.version == 5 {
				props = []packets.UserProperty{{Key: "seq", Val: fmt.Sprint(i)}}
			}
			c.publish("devices/"+d.id+"/telemetry", 1, uint16(i+1), []byte(fmt.Sprintf("%s-%03d", d.id, i)), props...)
			if ack := c.expect(packets.Puback, 5*time.Second); ack.ReasonCode != 0 {
				t.Fatalf("%s #%d: reason 0x%02x", d.id, i, ack.ReasonCode)
			}
		}
	}

	byShard := readAll(t, st, "telemetry")
	shardOf := map[string]string{}
	count := 0
	for shardID, recs := range byShard {
		next := map[string]int{}
		for _, r := range recs {
			count++
			if prev, ok := shardOf[r.Key]; ok && prev != shardID {
				t.Errorf("key %s in shards %s and %s", r.Key, prev, shardID)
			}
			shardOf[r.Key] = shardID
			if want := fmt.Sprintf("%s-%03d", r.Key, next[r.Key]); string(r.Data) != want {
				t.Errorf("shard %s: got %q, want %q (order)", shardID, r.Data, want)
			}
			next[r.Key]++
			if r.ClientID != r.Key || r.Topic != "devices/"+r.Key+"/telemetry" || r.QoS != 1 || r.Arrival == 0 {
				t.Errorf("record metadata %+v", r)
			}
			if v5 := r.Key == "d5" || r.Key == "d5b"; v5 != (len(r.Props) == 1) {
				t.Errorf("%s: props %+v", r.Key, r.Props)
			}
		}
	}
	if count != perDevice*len(devices) {
		t.Errorf("stored %d records, want %d", count, perDevice*len(devices))
	}

	// Refusals from the real store map to their reason codes.
	v5, _ := dialRaw(t, b.Addr(), "v5", 5)
	checks := []struct {
		topic   string
		payload []byte
		code    byte
	}{
		{"small/x", make([]byte, 100), 0x95}, // over max_record_size
		{"ghost/x", []byte("x"), 0x80},       // route to a stream that does not exist
		{"slow/x", []byte("1"), 0x00},        // within the 1 record/s bucket
		{"slow/x", []byte("2"), 0x97},        // over it, on_limit reject
		{"small/x", make([]byte, 10), 0x00},  // fits
	}
	for i, c := range checks {
		v5.publish(c.topic, 1, uint16(i+1), c.payload)
		ack := v5.expect(packets.Puback, 5*time.Second)
		if ack.ReasonCode != c.code {
			t.Errorf("%s (%d bytes): reason 0x%02x, want 0x%02x", c.topic, len(c.payload), ack.ReasonCode, c.code)
		}
	}
	if n := len(readAll(t, st, "slow")["shardId-000000000000"]); n != 1 {
		t.Errorf("slow stream holds %d records, want 1", n)
	}
	s := b.Stats()
	if s.Refused.TooLarge != 1 || s.Refused.Unspecified != 1 || s.Refused.QuotaExceeded != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// The stream's record limit reaches the MQTT packet limit: a publish far
// over it never gets its body read.
func TestRealStoreMaxPacketSize(t *testing.T) {
	st := openStore(t, shards.StreamConfig{Name: "telemetry", Shards: 1, MaxRecordSize: 4 * conf.KiB})
	b := startBroker(t, st, brokerOpts{maxRec: 4 << 10})
	c, ack := dialRaw(t, b.Addr(), "c", 5)
	if got := ack.Properties.MaximumPacketSize; got != 4<<10+64<<10 {
		t.Fatalf("maximum packet size %d", got)
	}
	c.publish("devices/c/telemetry", 1, 1, make([]byte, 100<<10))
	c.expectClosed(5 * time.Second)
	ids := make([]string, 0)
	for id, recs := range readAll(t, st, "telemetry") {
		if len(recs) > 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) != 0 {
		t.Errorf("oversize publish stored in %v", ids)
	}
}
