// weir: this file is weir's addition to mochi (see PATCHES.md, "Deferred
// acknowledgements"): an OnPublish hook may take a publish over and answer
// it later, from another goroutine, so that the client's read goroutine
// does not wait for slow work (weir's fsync) and one goroutine can answer
// a whole group of publishes at once.

package mqtt

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/packets"
)

// ErrPublishDeferred is returned by an OnPublish hook that called
// Server.DeferPublish: processPublish then sends, retains and forwards
// nothing until the hook calls Complete on the DeferredPublish, and the
// client's next packets are read meanwhile.
var ErrPublishDeferred = errors.New("publish deferred by a hook")

// DeferredPublish is a publish an OnPublish hook took over.
type DeferredPublish struct {
	s    *Server
	cl   *Client
	pk   packets.Packet
	err  error
	done bool
	next *DeferredPublish
}

// deferredQueue holds a client's deferred publishes in arrival order.
type deferredQueue struct {
	mu         sync.Mutex
	head, tail *DeferredPublish
	finishing  bool          // a Complete is answering the queue's head
	room       chan struct{} // made when the read loop first waits for receive quota
}

// DeferPublish takes pk over from processPublish: the hook must then
// return ErrPublishDeferred and, later, call Complete exactly once. The
// publish holds one unit of the client's receive quota (Receive Maximum)
// until it is answered; when the quota runs out the client's read loop
// waits for an answer instead of reading on (an MQTT 3.1.1 client, which
// is never told the Receive Maximum, is not disconnected for it).
//
// The publish is copied: pk is the read loop's packet, reused once the
// hook returns.
func (s *Server) DeferPublish(cl *Client, pk *packets.Packet) *DeferredPublish {
	d := &DeferredPublish{s: s, cl: cl, pk: *pk}
	if pk.FixedHeader.Qos > 0 {
		cl.State.Inflight.DecreaseReceiveQuota()
	}
	q := &cl.State.deferred
	q.mu.Lock()
	if q.tail == nil {
		q.head = d
	} else {
		q.tail.next = d
	}
	q.tail = d
	q.mu.Unlock()
	return d
}

// Complete answers a deferred publish as if OnPublish had returned err
// (nil, a packets.Code, packets.ErrRejectPacket or
// packets.CodeSuccessIgnore; see processPublish). It may be called from
// any goroutine. Answers leave in the order the publishes arrived: if an
// earlier publish of the client is still deferred, this one is answered
// by the Complete call that answers that one.
func (d *DeferredPublish) Complete(err error) {
	q := &d.cl.State.deferred
	q.mu.Lock()
	d.err, d.done = err, true
	if q.finishing {
		q.mu.Unlock()
		return
	}
	q.finishing = true
	for q.head != nil && q.head.done {
		h := q.head
		q.head = h.next
		if q.head == nil {
			q.tail = nil
		}
		q.mu.Unlock()
		h.finish()
		q.mu.Lock()
	}
	q.finishing = false
	if q.room != nil {
		select {
		case q.room <- struct{}{}:
		default:
		}
	}
	q.mu.Unlock()
}

func (d *DeferredPublish) finish() {
	s, cl, pk := d.s, d.cl, &d.pk
	var code packets.Code
	var err error
	if pk.FixedHeader.Qos == 2 && cl.Properties.ProtocolVersion == 5 &&
		!errors.Is(d.err, packets.ErrRejectPacket) && !errors.Is(d.err, packets.CodeSuccessIgnore) &&
		errors.As(d.err, &code) {
		// mochi issue #510: processPublish answers a refused QoS 2
		// publish with a PUBACK, which the client cannot match. A PUBREC
		// with a reason ≥ 0x80 ends the exchange (MQTT 5 §4.3.3).
		err = s.writeAck(cl, pk, packets.Pubrec, code)
	} else {
		err = s.finishPublish(cl, pk, d.err)
	}
	if pk.FixedHeader.Qos > 0 {
		cl.State.Inflight.IncreaseReceiveQuota()
	}
	if err != nil && !errors.Is(err, ErrConnectionClosed) {
		// On the read loop this error would have ended the client.
		cl.Stop(err)
	}
}

// waitDeferredRoom runs on the read loop after a hook deferred a publish:
// while the client's receive quota is used up by its deferred publishes,
// it waits for one to be answered rather than read a packet that
// processPublish would refuse.
func (s *Server) waitDeferredRoom(cl *Client) error {
	q := &cl.State.deferred
	for atomic.LoadInt32(&cl.State.Inflight.receiveQuota) == 0 {
		q.mu.Lock()
		if q.head == nil {
			q.mu.Unlock()
			return nil // the quota is held by something else: processPublish decides
		}
		if q.room == nil {
			q.room = make(chan struct{}, 1)
		}
		if atomic.LoadInt32(&cl.State.Inflight.receiveQuota) > 0 {
			q.mu.Unlock()
			return nil
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-cl.State.open.Done():
			return nil
		}
	}
	return nil
}
