package fleet

import (
	"strconv"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// trackingStore is paho's ordered memory store (so messages resent after a
// reconnect keep their order) with two taps that let a device learn about
// its messages without a goroutine waiting on each publish token:
//
//   - Put of an outbound PUBLISH tells the device which message id paho
//     gave the message it is publishing right now;
//   - Del of an outbound key is paho's reaction to PUBACK (QoS 1) or
//     PUBCOMP (QoS 2): that is the acknowledgement.
//
// All and Reset mark the end of paho's connection set-up: after every
// successful connect paho either resumes (All, then resends what it lists)
// or, on a first clean-session connect, wipes the store (Reset). A device
// publishes nothing new on a connection until that happened: a message
// stored before resume's All would be sent twice (once by us, once by
// resume, racing on its DUP flag), one stored before Reset would be lost.
type trackingStore struct {
	inner *mqtt.OrderedMemoryStore
	d     *device
}

func newTrackingStore(d *device) *trackingStore {
	return &trackingStore{inner: mqtt.NewOrderedMemoryStore(), d: d}
}

func (s *trackingStore) Open()                                { s.inner.Open() }
func (s *trackingStore) Close()                               { s.inner.Close() }
func (s *trackingStore) Get(key string) packets.ControlPacket { return s.inner.Get(key) }
func (s *trackingStore) All() []string {
	keys := s.inner.All()
	s.d.resumed(true)
	return keys
}
func (s *trackingStore) forget(mid uint16) { s.inner.Del(outboundKey(mid)) }
func (s *trackingStore) Put(key string, m packets.ControlPacket) {
	s.inner.Put(key, m)
	if p, ok := m.(*packets.PublishPacket); ok && strings.HasPrefix(key, "o.") {
		s.d.stored(p.MessageID)
	}
}

func (s *trackingStore) Del(key string) {
	s.inner.Del(key)
	if mid, ok := midOf(key); ok {
		s.d.acked(mid)
	}
}

func (s *trackingStore) Reset() {
	s.inner.Reset()
	s.d.resumed(false)
}

func midOf(key string) (uint16, bool) {
	rest, ok := strings.CutPrefix(key, "o.")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 16)
	return uint16(n), err == nil && n != 0
}

func outboundKey(mid uint16) string { return "o." + strconv.FormatUint(uint64(mid), 10) }
