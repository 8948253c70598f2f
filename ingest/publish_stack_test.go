//go:build !race

// The race detector enlarges every frame, so the sizes below hold only in
// a normal build; scripts/test.sh runs this test without -race.

package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/ingest/auth"
	"github.com/weir-gateway/weir/shards"
)

// publishStackGrowthLimit is how much one QoS 1 publish may grow the
// goroutine stacks the broker keeps for a device. The publish runs on the
// device's read loop, which idles in 4 KiB: through mochi, the auth and
// ingest hooks and the store down to the log's AppendDeferred (the PUBACK
// is written later, by the log's completion goroutine). That path mostly
// fits in the 4 KiB (measured: 0.3–0.8 KB of growth per device, from the
// few read loops that grew to 8); grown to 8 KiB every time it would show
// 4 KiB, and 12 at 16 KiB. Before mochi handed the packet down by pointer
// (third_party/mochi-mqtt-server/PATCHES.md, "The publish path by
// pointer") it was 28, at 32 KiB.
const publishStackGrowthLimit = 8 << 10

// TestPublishStack publishes one QoS 1 message from each of n idle
// devices, through the real hooks (ACL on) and a real store, with the
// garbage collector off so that no stack is shrunk between the
// measurements: the StackInuse growth per device is the read loop's. Then
// one GC must give it back.
func TestPublishStack(t *testing.T) {
	acl, err := auth.ParseACL("acl", []byte("topic write devices/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, shards.StreamConfig{Name: "telemetry", Shards: 2})
	b := startBroker(t, st, brokerOpts{opts: authOpts(nil, acl, "")})
	addr := b.Addr().String()

	const n = 200
	conns := connectIdleN(t, addr, "stack", n)
	// A first publish grows the store's own goroutines (the log writer,
	// the completion) to their working size; they are not the devices'.
	warm, err := connectIdle(addr, "stack-warm", true)
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()

	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC() // shrinks what CONNECT grew: every read loop idles in 4 KiB
	// ...and after it, one more publish regrows the store's goroutines.
	warm.SetDeadline(time.Now().Add(10 * time.Second))
	publishOne(t, warm, "stack-warm", 2)
	before := stackInuseNoGC()

	for i, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(encodePublish(t, fmt.Sprintf("stack-%03d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		expectPuback(t, c, fmt.Sprintf("stack-%03d", i))
	}
	per := (stackInuseNoGC() - before) / n
	t.Logf("%d devices, one QoS 1 publish each: goroutine stacks grew %d bytes per device (limit %d)", n, per, publishStackGrowthLimit)
	if per > publishStackGrowthLimit {
		t.Fatalf("a QoS 1 publish grew the stacks by %d bytes per device, more than %d: the read loop's path through mochi and the hooks no longer fits in 8 KiB (mochi PATCHES.md, \"The publish path by pointer\")", per, publishStackGrowthLimit)
	}

	// The idle read loop is parked about 1.1 KB deep, under the quarter
	// of 8 KiB (less 800 bytes of guard) below which a GC halves a stack:
	// one GC gives the devices their idle stacks back.
	runtime.GC()
	if left := (stackInuseNoGC() - before) / n; left > 1<<10 {
		t.Errorf("one GC after the publish, the stacks are still %d bytes per device above the idle devices' (more than 1 KiB): the parked read loop is too deep for the GC to halve 8 KiB (mochi PATCHES.md, \"Why the read loop stays at 4 KiB\")", left)
	}
}

// connectIdleN connects n idle devices, PREFIX-000 onwards, closed when
// the test ends.
func connectIdleN(t *testing.T, addr, prefix string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := connectIdle(addr, fmt.Sprintf("%s-%03d", prefix, i), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

func stackInuseNoGC() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}

func encodePublish(t *testing.T, id string, packetID uint16) []byte {
	t.Helper()
	var buf bytes.Buffer
	pub := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
		ProtocolVersion: 4,
		TopicName:       "devices/" + id + "/telemetry",
		PacketID:        packetID,
		Payload:         bytes.Repeat([]byte("x"), 200),
	}
	if err := pub.PublishEncode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func publishOne(t *testing.T, c net.Conn, id string, packetID uint16) {
	t.Helper()
	if _, err := c.Write(encodePublish(t, id, packetID)); err != nil {
		t.Fatal(err)
	}
	expectPuback(t, c, id)
}

func expectPuback(t *testing.T, c net.Conn, id string) {
	t.Helper()
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		t.Fatalf("%s: PUBACK: %v", id, err)
	}
	if ack[0] != packets.Puback<<4 {
		t.Fatalf("%s: % x, want a PUBACK", id, ack)
	}
}

// pingStackGrowthLimit is how much answering one PINGREQ may grow a
// device's goroutine stacks. Every device with a keepalive pings, so an
// idle fleet's read loops would sit at whatever a ping grows them to
// until GCs halve them back: through mochi's by-value processPacket and
// WritePacket it was 16 KiB (12 KiB of growth per device).
const pingStackGrowthLimit = 1 << 10

// TestPingStack: n idle devices send one PINGREQ each; the answer must
// leave their read loops in the 4 KiB they idle in.
func TestPingStack(t *testing.T) {
	st := openStore(t, shards.StreamConfig{Name: "telemetry", Shards: 2})
	b := startBroker(t, st, brokerOpts{})
	addr := b.Addr().String()

	const n = 200
	conns := connectIdleN(t, addr, "ping", n)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC() // shrinks what CONNECT grew
	before := stackInuseNoGC()
	for _, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte{packets.Pingreq << 4, 0}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		resp := make([]byte, 2)
		if _, err := io.ReadFull(c, resp); err != nil {
			t.Fatalf("ping-%03d: PINGRESP: %v", i, err)
		}
		if resp[0] != packets.Pingresp<<4 || resp[1] != 0 {
			t.Fatalf("ping-%03d: % x, want a PINGRESP", i, resp)
		}
	}
	per := (stackInuseNoGC() - before) / n
	t.Logf("%d devices, one PINGREQ each: goroutine stacks grew %d bytes per device (limit %d)", n, per, pingStackGrowthLimit)
	if per > pingStackGrowthLimit {
		t.Fatalf("a PINGREQ grew the stacks by %d bytes per device, more than %d: the answer's path no longer fits in the idle read loop's 4 KiB (mochi PATCHES.md, \"The publish path by pointer\")", per, pingStackGrowthLimit)
	}
}
