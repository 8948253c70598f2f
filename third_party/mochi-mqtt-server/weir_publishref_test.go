package mqtt

// weir: not upstream. Hooks.OnPublishRef, the dispatcher the read loop
// calls with its packet by pointer (publishref.go, PATCHES.md "The publish
// path by pointer"), must answer as upstream's by-value OnPublish did.

import (
	"errors"
	"io"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// refHook takes publishes by pointer; its by-value OnPublish must not be
// called by the dispatcher.
type refHook struct {
	HookBase
	t     *testing.T
	topic string // set on the packet
	err   error
	seen  *packets.Packet
}

func (h *refHook) ID() string           { return "ref" }
func (h *refHook) Provides(b byte) bool { return b == OnPublish }

func (h *refHook) OnPublish(_ *Client, pk packets.Packet) (packets.Packet, error) {
	h.t.Error("the dispatcher called the by-value OnPublish of a PublishRefHook")
	return pk, nil
}

func (h *refHook) OnPublishRef(_ *Client, pk *packets.Packet) error {
	h.seen = pk
	if h.err != nil {
		return h.err
	}
	if h.topic != "" {
		pk.TopicName = h.topic
	}
	return nil
}

// valueHook is an upstream-style hook: it returns a changed copy.
type valueHook struct {
	HookBase
	topic string
	err   error
}

func (h *valueHook) ID() string           { return "value" }
func (h *valueHook) Provides(b byte) bool { return b == OnPublish }

func (h *valueHook) OnPublish(_ *Client, pk packets.Packet) (packets.Packet, error) {
	if h.err != nil {
		pk.TopicName = "changed by a failing hook"
		return pk, h.err
	}
	pk.TopicName = h.topic
	return pk, nil
}

func TestHooksOnPublishRef(t *testing.T) {
	errFail := errors.New("hook failed")
	cases := []struct {
		name      string
		hooks     func(t *testing.T) []Hook
		wantErr   error
		wantTopic string
	}{
		{"ref hook changes the packet in place", func(t *testing.T) []Hook {
			return []Hook{&refHook{t: t, topic: "ref"}}
		}, nil, "ref"},
		{"value hook's result is copied back", func(t *testing.T) []Hook {
			return []Hook{&valueHook{topic: "value"}}
		}, nil, "value"},
		{"hooks run in order on one packet", func(t *testing.T) []Hook {
			return []Hook{&valueHook{topic: "value"}, &refHook{t: t, topic: "ref"}}
		}, nil, "ref"},
		{"a failing value hook leaves the packet as it arrived", func(t *testing.T) []Hook {
			return []Hook{&valueHook{topic: "value"}, &valueHook{err: packets.ErrRejectPacket}}
		}, packets.ErrRejectPacket, "in"},
		{"so does a failing ref hook after a value hook", func(t *testing.T) []Hook {
			return []Hook{&valueHook{topic: "value"}, &refHook{t: t, err: errFail}}
		}, errFail, "in"},
		{"a deferred publish keeps the hooks' packet", func(t *testing.T) []Hook {
			return []Hook{&valueHook{topic: "value"}, &refHook{t: t, err: ErrPublishDeferred}}
		}, ErrPublishDeferred, "value"},
		{"a code reaches the caller unwrapped", func(t *testing.T) []Hook {
			return []Hook{&refHook{t: t, err: packets.ErrQuotaExceeded}}
		}, packets.ErrQuotaExceeded, "in"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &Hooks{Log: logger}
			for _, hook := range c.hooks(t) {
				if err := h.Add(hook, nil); err != nil {
					t.Fatal(err)
				}
			}
			pk := &packets.Packet{TopicName: "in", PacketID: 7}
			err := h.OnPublishRef(new(Client), pk)
			if err != c.wantErr {
				t.Fatalf("error %v, want %v", err, c.wantErr)
			}
			if pk.TopicName != c.wantTopic || pk.PacketID != 7 {
				t.Errorf("packet after the hooks: topic %q id %d, want %q 7", pk.TopicName, pk.PacketID, c.wantTopic)
			}
			// The by-value dispatcher gives the same answer, and the
			// packet it was given when a hook fails, as upstream's.
			h2 := &Hooks{Log: logger}
			for _, hook := range c.hooks(t) {
				if err := h2.Add(hook, nil); err != nil {
					t.Fatal(err)
				}
			}
			out, err := h2.OnPublish(new(Client), packets.Packet{TopicName: "in", PacketID: 7})
			if err != c.wantErr {
				t.Fatalf("OnPublish: error %v, want %v", err, c.wantErr)
			}
			if out.TopicName != c.wantTopic {
				t.Errorf("OnPublish: topic %q, want %q", out.TopicName, c.wantTopic)
			}
		})
	}
}

// TestReadLoopPassesPacketByPointer: a publish read from a client reaches
// a PublishRefHook as a pointer, and that packet is cleared for reuse
// once processed, so the pool keeps no payload alive.
func TestReadLoopPassesPacketByPointer(t *testing.T) {
	s := newServer()
	hook := &refHook{t: t}
	if err := s.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	cl, r, _ := newTestClient()
	cl.Properties.ProtocolVersion = 4
	done := make(chan error, 1)
	go func() { done <- cl.readRef(s.receivePacketRef) }()
	go func() {
		_, _ = r.Write(packets.TPacketData[packets.Publish].Get(packets.TPublishQos1).RawBytes)
	}()
	ack := make([]byte, 4)
	if _, err := io.ReadFull(r, ack); err != nil {
		t.Fatal(err)
	}
	if ack[0] != packets.Puback<<4 {
		t.Fatalf("% x, want a PUBACK", ack)
	}
	_ = r.Close()
	<-done // the read loop has ended: it no longer touches the packet
	if hook.seen == nil {
		t.Fatal("the PublishRefHook was not called")
	}
	if hook.seen.TopicName != "" || hook.seen.Payload != nil {
		t.Errorf("the read loop's packet was not cleared after use: topic %q payload %q", hook.seen.TopicName, hook.seen.Payload)
	}
}
