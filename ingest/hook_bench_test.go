package ingest

import (
	"context"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"
)

// BenchmarkOnPublish is the hook's own cost per publish (routing, key,
// record, counters) with a sink that returns at once: the overhead weir
// adds to mochi's publish path, apart from the wait for the disk.
func BenchmarkOnPublish(b *testing.B) {
	routes := []Route{
		{Filter: "cmd/#", Stream: "commands"},
		{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"},
		{Filter: "json/#", Stream: "json", PartitionKey: "{payload.device.id}"},
	}
	payload := make([]byte, 200)
	jsonPayload := []byte(`{"device":{"id":"sensor-0042"},"t":21.5,"rh":40.1,"ok":true}`)
	cases := []struct {
		name, topic string
		payload     []byte
		props       []packets.UserProperty
	}{
		{"routed/topic-key", "devices/d-0042/telemetry", payload, nil},
		{"routed/topic-key+props", "devices/d-0042/telemetry", payload, []packets.UserProperty{{Key: "unit", Val: "C"}}},
		{"routed/payload-key", "json/x", jsonPayload, nil},
		{"unrouted", "other/topic", payload, nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			br, err := New(testConfig(), routes, discardSink{}, Options{Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close(context.Background())
			cl := br.server.NewClient(nil, "mqtt", "d-0042", false)
			cl.Properties.ProtocolVersion = 5
			pk := packets.Packet{
				FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
				TopicName:   c.topic,
				PacketID:    1,
				Payload:     c.payload,
				Properties:  packets.Properties{User: c.props},
			}
			b.SetBytes(int64(len(c.payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := br.hook.OnPublish(cl, pk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
