package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/shards"
)

// TestClients: the console's client table lists connected clients with
// their protocol, publish count, last publish and refusals; a client that
// went away is not listed.
func TestClients(t *testing.T) {
	sink := &fakeSink{fn: func(_ context.Context, _ string, rec *shards.Record, _ shards.AppendOptions) error {
		if string(rec.Data) == "refuse" {
			return shards.ErrThrottled
		}
		return nil
	}}
	b := startBroker(t, sink, brokerOpts{})
	before := time.Now()
	v5, _ := dialRaw(t, b.Addr(), "dev-b", 5)
	v3, _ := dialRaw(t, b.Addr(), "dev-a", 4)
	v5.publish("devices/dev-b/telemetry", 1, 1, []byte("ok"))
	v5.expect(packets.Puback, 5*time.Second)
	v5.publish("devices/dev-b/telemetry", 1, 2, []byte("refuse"))
	v5.expect(packets.Puback, 5*time.Second)

	cs := b.Clients()
	if len(cs) != 2 || cs[0].ID != "dev-a" || cs[1].ID != "dev-b" {
		t.Fatalf("clients: %+v", cs)
	}
	a, c := cs[0], cs[1]
	if a.Protocol != "MQTT 3.1.1" || a.MessagesIn != 0 || !a.LastPublish.IsZero() || a.Since.Before(before.Add(-time.Second)) || a.Remote == "" {
		t.Fatalf("dev-a: %+v", a)
	}
	if c.Protocol != "MQTT 5" || c.MessagesIn != 2 || c.Refusals != 1 || c.LastPublish.Before(before) {
		t.Fatalf("dev-b: %+v", c)
	}
	v3.conn.Close()
	waitFor(t, "dev-a gone", func() bool { return len(b.Clients()) == 1 })
}
