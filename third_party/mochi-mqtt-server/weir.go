// weir: this file is weir's addition to mochi (see PATCHES.md): the
// limits and refusals weir's patches add, the MQTT 3.1.1 CONNACK codes, and
// retained-message delivery that waits for a slow subscriber instead of
// dropping.

package mqtt

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Refusal says what the server refused; Options.OnRefused receives it so
// that the embedding program can count and log refusals mochi makes
// before any hook sees the packet.
type Refusal uint8

const (
	// RefusedSubscription: a SUBSCRIBE filter past
	// Capabilities.MaximumClientSubscriptions (SUBACK 0x97, 3.1.1: 0x80).
	RefusedSubscription Refusal = iota + 1
	// RefusedSubscriptionTotal: a SUBSCRIBE filter past
	// Capabilities.MaximumSubscriptions, all clients together (the same
	// codes).
	RefusedSubscriptionTotal
	// RefusedSysPublish: a PUBLISH to a $SYS topic (PUBACK/PUBREC 0x87;
	// 3.1.1 QoS 1/2: disconnected; QoS 0: dropped).
	RefusedSysPublish
	// RefusedTopicName: a PUBLISH to another topic name the server does
	// not accept, such as $share/... (PUBACK/PUBREC 0x90; 3.1.1 as above).
	RefusedTopicName
	// RefusedProtocolError: a packet that broke the protocol (see
	// isProtocolError); the client was disconnected (MQTT 5: DISCONNECT or
	// CONNACK with the reason).
	RefusedProtocolError
)

// refused tells Options.OnRefused, if set.
func (s *Server) refused(cl *Client, r Refusal) {
	if s.Options.OnRefused != nil {
		s.Options.OnRefused(cl, r)
	}
}

// isProtocolError reports whether code ends a client for breaking the
// protocol: a malformed packet, a protocol error, more QoS 1/2 publishes
// than Receive Maximum, a bad topic alias, a packet over the size limit.
func isProtocolError(code packets.Code) bool {
	switch code.Code {
	case packets.ErrMalformedPacket.Code, packets.ErrProtocolViolation.Code, packets.ErrReceiveMaximum.Code,
		packets.ErrTopicAliasInvalid.Code, packets.ErrPacketTooLarge.Code:
		return true
	}
	return false
}

// v3ConnackCode maps a CONNACK reason to the MQTT 3.1.1 return code (§3.2.2.3,
// 0..5). ok is false for malformed packets and protocol errors, which 3.1.1
// answers by closing the connection without a CONNACK ([MQTT-3.1.4-1]).
func v3ConnackCode(reason packets.Code) (code packets.Code, ok bool) {
	switch reason {
	case packets.ErrMalformedProtocolName, packets.ErrMalformedProtocolVersion,
		packets.ErrProtocolViolationProtocolName, packets.ErrProtocolViolationProtocolVersion:
		return packets.Err3UnsupportedProtocolVersion, true // 1
	case packets.ErrMalformedUsername, packets.ErrMalformedPassword:
		return packets.ErrMalformedUsernameOrPassword, true // 4
	}
	switch reason.Code {
	case packets.ErrUnsupportedProtocolVersion.Code:
		return packets.Err3UnsupportedProtocolVersion, true // 1
	case packets.ErrClientIdentifierNotValid.Code:
		return packets.Err3ClientIdentifierNotValid, true // 2
	case packets.ErrBadUsernameOrPassword.Code:
		return packets.ErrMalformedUsernameOrPassword, true // 4: bad user name or password
	case packets.ErrNotAuthorized.Code, packets.ErrBanned.Code, packets.ErrBadAuthenticationMethod.Code:
		return packets.Err3NotAuthorized, true // 5
	case packets.ErrMalformedPacket.Code, packets.ErrProtocolViolation.Code:
		return packets.Code{}, false
	}
	// Server unavailable, busy, quota exceeded, connection rate exceeded,
	// unsupported QoS/retain in the will, unspecified: the server cannot
	// take the client now.
	return packets.Err3ServerUnavailable, true // 3
}

// retainedQueue holds the retained-message deliveries a client's new
// subscriptions are owed, sent by one goroutine per client at a time.
type retainedQueue struct {
	mu      sync.Mutex
	pending []packets.Subscription // at most one per filter
	running bool
}

// queueRetained arranges for the retained messages matching sub to be sent
// to cl. It runs on cl's read goroutine and does not block: a QoS 1/2
// delivery waits for cl's PUBACKs, which that goroutine reads.
//
// Memory stays bounded per client: pending subscriptions are kept once per
// filter (at most the client's subscription cap), and only the delivery
// under way holds a list of matching topic names (16 bytes each; the
// strings are the retained index's own).
func (s *Server) queueRetained(cl *Client, sub packets.Subscription) {
	cl.State.retainedMu.Lock()
	q := cl.State.retained
	if q == nil {
		q = &retainedQueue{}
		cl.State.retained = q
	}
	cl.State.retainedMu.Unlock()

	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.pending {
		if p.Filter == sub.Filter {
			q.pending[i] = sub
			return
		}
	}
	q.pending = append(q.pending, sub)
	if !q.running {
		q.running = true
		go s.deliverRetained(cl, q)
	}
}

// deliverRetained sends the queued retained messages until the queue is
// empty or the client has gone.
func (s *Server) deliverRetained(cl *Client, q *retainedQueue) {
	for {
		q.mu.Lock()
		if len(q.pending) == 0 || cl.Closed() {
			q.pending = nil
			q.running = false
			q.mu.Unlock()
			return
		}
		sub := q.pending[0]
		q.pending = q.pending[1:]
		q.mu.Unlock()

		msgs := s.Topics.Messages(sub.Filter)
		topics := make([]string, len(msgs))
		for i := range msgs {
			topics[i] = msgs[i].TopicName
		}
		msgs = nil // the packet copies can go; only the names stay
		for _, topic := range topics {
			pk, ok := s.Topics.Retained.Get(topic)
			if !ok || len(pk.Payload) == 0 {
				continue // cleared or expired since the scan
			}
			if !s.publishRetainedWait(cl, sub, pk) {
				break
			}
		}
	}
}

// publishRetainedWait sends one retained message, waiting while cl's
// outbound queue, in-flight window or receive maximum is full. It returns
// false once cl has gone.
func (s *Server) publishRetainedWait(cl *Client, sub packets.Subscription, pk packets.Packet) bool {
	qos := min(pk.FixedHeader.Qos, sub.Qos, s.Options.Capabilities.MaximumQos)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		if cl.Closed() || cl.Net.Conn == nil {
			return false
		}
		if roomFor(cl, qos) {
			_, err := s.publishToClient(cl, sub, pk)
			switch {
			case err == nil:
				s.hooks.OnRetainPublished(cl, pk)
				return true
			case errors.Is(err, packets.ErrNotAuthorized):
				return true // the ACL denies this topic to cl: skip it
			case !errors.Is(err, packets.ErrQuotaExceeded) && !errors.Is(err, packets.ErrPendingClientWritesExceeded):
				return false // disconnected, packet ids exhausted
			}
			// A live publish took the room first: wait and try again.
		}
		select {
		case <-cl.State.open.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// roomFor reports whether cl can take one more packet of qos without
// publishToClient dropping it.
func roomFor(cl *Client, qos byte) bool {
	if len(cl.State.outbound) >= cap(cl.State.outbound) {
		return false
	}
	if qos == 0 {
		return true
	}
	// A client that set no Receive Maximum (3.1.1) has no send quota.
	return cl.State.Inflight.Len() < int(cl.ops.options.Capabilities.MaximumInflight) &&
		(atomic.LoadInt32(&cl.State.Inflight.maximumSendQuota) == 0 || atomic.LoadInt32(&cl.State.Inflight.sendQuota) > 0)
}

// subscriptionCapped reports whether a new subscription of cl to filter
// would pass a subscription cap. A filter cl holds already is replaced, not
// added, so it always passes. Subscribes racing on other clients can pass
// the total cap together: it is exceeded by at most one each.
func (s *Server) subscriptionCapped(cl *Client, filter string) (Refusal, bool) {
	perClient, total := s.Options.Capabilities.MaximumClientSubscriptions, s.Options.Capabilities.MaximumSubscriptions
	if perClient <= 0 && total <= 0 || cl.State.Subscriptions.Has(filter) {
		return 0, false
	}
	if perClient > 0 && cl.State.Subscriptions.Len() >= perClient {
		return RefusedSubscription, true
	}
	if total > 0 && atomic.LoadInt64(&s.Info.Subscriptions) >= total {
		return RefusedSubscriptionTotal, true
	}
	return 0, false
}

// Has reports whether the client holds a subscription to filter.
func (s *Subscriptions) Has(filter string) bool {
	_, ok := s.Get(filter)
	return ok
}

// refuseTopic answers a PUBLISH to a topic name clients may not publish to
// (IsValidFilter false; wildcards are refused before, as Protocol Errors):
// $SYS/..., a bare $share. Upstream returned without
// a word, so a QoS 1/2 publisher waited forever with an in-flight slot
// taken. Like an ACL denial: an MQTT 5 client gets PUBACK or PUBREC with
// 0x87 Not authorized for $SYS (a topic that exists but is the server's;
// Mosquitto denies $SYS writes through its ACL and answers 0x87 the same
// way) or 0x90 Topic Name invalid for the rest; an MQTT 3.1.1 client,
// which has no negative acknowledgement, is disconnected so that it does
// not wait; QoS 0 is dropped. Nothing is stored, retained or forwarded.
func (s *Server) refuseTopic(cl *Client, pk *packets.Packet) error {
	why, code := RefusedTopicName, packets.ErrTopicNameInvalid
	if len(pk.TopicName) >= len(SysPrefix) && strings.EqualFold(pk.TopicName[:len(SysPrefix)], SysPrefix) {
		why, code = RefusedSysPublish, packets.ErrNotAuthorized
	}
	s.refused(cl, why)
	if pk.FixedHeader.Qos == 0 {
		return nil
	}
	if cl.Properties.ProtocolVersion != 5 {
		// 3.1.1 has no server DISCONNECT: close the socket. Returning nil
		// lets the read loop end quietly, so no will is published.
		cl.Stop(code)
		return nil
	}
	ackType := packets.Puback
	if pk.FixedHeader.Qos == 2 {
		ackType = packets.Pubrec // a reason ≥ 0x80 ends the QoS 2 flow (§4.3.3)
	}
	return s.writeAck(cl, pk, ackType, code)
}

// writeAck answers pk with an ack of type ackType and reason code, built
// as upstream's processPublish builds it. It is apart so that the packets
// it builds and writes (2 KB) are in its frame, entered only to answer
// so, and not in that of processPublishRef, which every publish goes
// through on the read goroutine (publishref.go).
//
//go:noinline
func (s *Server) writeAck(cl *Client, pk *packets.Packet, ackType byte, code packets.Code) error {
	return cl.WritePacket(s.buildAck(pk.PacketID, ackType, 0, pk.Properties, code))
}

// typeOf is Inflight.Get for the type of the in-flight packet alone:
// Get's 800-byte result would sit in processPublishRef's frame.
func (i *Inflight) typeOf(id uint16) (t byte, ok bool) {
	i.RLock()
	defer i.RUnlock()
	if _, ok = i.internal[id]; ok {
		t = i.internal[id].FixedHeader.Type
	}
	return t, ok
}

// CountType returns how many in-flight packets have type t; with
// packets.Pubrec, the client's QoS 2 publishes awaiting PUBREL.
func (i *Inflight) CountType(t byte) int {
	i.RLock()
	defer i.RUnlock()
	n := 0
	for _, v := range i.internal {
		if v.FixedHeader.Type == t {
			n++
		}
	}
	return n
}

// ReadBufferSizer is implemented by a net.Conn that wants a read buffer
// of its own size instead of Options.ClientNetReadBufferSize. A TLS
// connection already buffers what it reads (crypto/tls keeps the whole
// decrypted record), so a second buffer on top of it mostly costs memory,
// held by every idle client for the life of its connection.
type ReadBufferSizer interface {
	// ReadBufferSize is the size of the client's bufio.Reader; 0 or
	// less leaves the server's default.
	ReadBufferSize() int
}

// readBufferSize is the read buffer size for a client on c.
func readBufferSize(c net.Conn, fallback int) int {
	if s, ok := c.(ReadBufferSizer); ok {
		if n := s.ReadBufferSize(); n > 0 {
			return n
		}
	}
	return fallback
}
