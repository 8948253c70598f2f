package mqtt

// weir: not upstream. The on-demand writer (writer.go) must deliver every
// queued packet, in order, however the bursts fall against its exits.

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
)

func TestOnDemandWriterDeliversInOrder(t *testing.T) {
	caps := NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 4096 // every burst fits: none dropped
	s := New(&Options{Logger: logger, Capabilities: caps, InlineClient: true})
	if err := s.AddHook(new(AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	c, err := net.Dial("tcp", l.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	// CONNECT, then SUBSCRIBE sub/# at QoS 0, 3.1.1.
	connect := []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 4, 's', 'u', 'b', '1'}
	connect[1] = byte(len(connect) - 2)
	subscribe := []byte{0x82, 10, 0, 1, 0, 5, 's', 'u', 'b', '/', '#', 0}
	subscribe[1] = byte(len(subscribe) - 2)
	if _, err := c.Write(append(connect, subscribe...)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	readPacket := func() (byte, []byte) {
		t.Helper()
		h, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		n, mul := 0, 1
		for {
			b, err := r.ReadByte()
			if err != nil {
				t.Fatal(err)
			}
			n += int(b&0x7f) * mul
			mul <<= 7
			if b&0x80 == 0 {
				break
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		return h, body
	}
	if h, _ := readPacket(); h != 0x20 {
		t.Fatalf("want CONNACK, got %#x", h)
	}
	if h, _ := readPacket(); h != 0x90 {
		t.Fatalf("want SUBACK, got %#x", h)
	}

	// Bursts of 1, 2, 3, ... packets, with pauses that let the writer
	// exit between some of them and not others.
	const total = 3000
	go func() {
		sent, burst := 0, 1
		for sent < total {
			for i := 0; i < burst && sent < total; i++ {
				var p [4]byte
				binary.BigEndian.PutUint32(p[:], uint32(sent))
				if err := s.Publish("sub/x", p[:], false, 0); err != nil {
					t.Error(err)
					return
				}
				sent++
			}
			if burst%3 == 0 {
				time.Sleep(time.Millisecond)
			} else {
				runtime.Gosched()
			}
			burst = burst%50 + 1
		}
	}()
	for want := 0; want < total; want++ {
		h, body := readPacket()
		if h&0xf0 != 0x30 {
			t.Fatalf("packet %d: want PUBLISH, got %#x", want, h)
		}
		topicLen := int(binary.BigEndian.Uint16(body))
		payload := body[2+topicLen:]
		if got := int(binary.BigEndian.Uint32(payload)); got != want {
			t.Fatalf("got message %d, want %d: lost or reordered", got, want)
		}
	}
	// The writer exits once the queue is drained.
	deadline := time.Now().Add(5 * time.Second)
	for {
		cl, ok := s.Clients.Get("sub1")
		if ok && !cl.State.writing.Load() && len(cl.State.outbound) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer is still claimed after the queue drained")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The interleaving the delivery test can hardly hit: a packet queued while
// the writer is between finding the queue empty and letting go, whose
// sender's claim therefore failed. The writer must not exit on it.
func TestOnDemandWriterReleaseSeesLatePacket(t *testing.T) {
	// Not newTestClient: it starts a WriteLoop, which would take the packet.
	cl := newClient(nil, &ops{info: new(system.Info), hooks: new(Hooks), log: logger,
		options: &Options{Capabilities: &Capabilities{MaximumClientWritesPending: 3}}})
	cl.State.writing.Store(true) // the writer, about to release
	cl.State.outbound <- new(packets.Packet)
	cl.kickWriter() // the sender's claim: fails, the writer holds it
	if cl.releaseWriter() {
		t.Fatal("the writer stopped with a packet queued and no other writer")
	}
	if !cl.State.writing.Load() {
		t.Fatal("the writer went on without holding the claim")
	}
	<-cl.State.outbound
	if !cl.releaseWriter() || cl.State.writing.Load() {
		t.Fatal("an empty queue must release the writer")
	}
}
