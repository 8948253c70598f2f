package mqtt

// weir: not upstream. The cost of a QoS 1 publish through the server's
// read loop (decode, hooks, PUBACK), which the publish path by pointer
// (PATCHES.md) changed: compare a build before and after it.

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

func BenchmarkPublishQoS1(b *testing.B) {
	s := New(&Options{Logger: logger})
	if err := s.AddHook(new(AllowHook), nil); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	srv, cl := net.Pipe()
	defer cl.Close()
	go func() { _ = s.EstablishConnection("bench", srv) }()

	connect := packets.TPacketData[packets.Connect].Get(packets.TConnectMqtt311).RawBytes
	go func() { _, _ = cl.Write(connect) }()
	connack := make([]byte, 4)
	if _, err := io.ReadFull(cl, connack); err != nil || connack[0] != packets.Connack<<4 {
		b.Fatalf("CONNACK % x: %v", connack, err)
	}

	var buf bytes.Buffer
	pub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 4,
		TopicName: "devices/d-0042/telemetry", PacketID: 1, Payload: make([]byte, 200)}
	if err := pub.PublishEncode(&buf); err != nil {
		b.Fatal(err)
	}
	raw := buf.Bytes()
	b.SetBytes(int64(len(pub.Payload)))
	b.ReportAllocs()
	b.ResetTimer()
	errs := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := cl.Write(raw); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	ack := make([]byte, 4)
	for i := 0; i < b.N; i++ {
		if _, err := io.ReadFull(cl, ack); err != nil || ack[0] != packets.Puback<<4 {
			b.Fatalf("PUBACK % x: %v", ack, err)
		}
	}
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
