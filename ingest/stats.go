package ingest

import "sync/atomic"

// Stats are the broker's publish counters since New. Every publish from a
// device that reaches the hook is counted once in Received and, once the
// hook has returned, once in exactly one of Stored, Unrouted or Refused:
// Received = Stored + Unrouted + Refused.Total() + (publishes in flight).
type Stats struct {
	Received uint64 // publishes from devices seen by the hook
	Stored   uint64 // accepted by the sink (QoS ≥ 1: durable; QoS 0: queued)
	Unrouted uint64 // matched no route: delivered to subscribers, not stored
	Refused  RefusedStats
	// DroppedQoS0 counts the QoS 0 publishes among Refused: they were
	// dropped silently, as QoS 0 has no acknowledgement to refuse.
	DroppedQoS0 uint64
	// Disconnected counts MQTT 3.1.1 clients disconnected because a QoS ≥ 1
	// publish of theirs was refused (they cannot receive a reason code).
	Disconnected uint64
	// Connections is the number of TCP connections open now, including
	// those that have not sent CONNECT yet.
	Connections int
	// Limits counts the refusals of the abuse limits and of protocol
	// strictness that are not publishes refused by the hook.
	Limits LimitStats

	// Access control (auth.go).
	LoginFailures LoginFailureStats
	// SubscribeDenied counts SUBSCRIBE filters the ACL refused;
	// DeliveryDenied messages not delivered to a subscriber because the
	// ACL does not let it read the topic.
	SubscribeDenied, DeliveryDenied uint64
}

// LimitStats are the refusals made before a publish reaches the hook, and
// the retained messages held (limits.go).
type LimitStats struct {
	Connections   uint64 // CONNACK 0x97 (3.1.1: 3): mqtt.max_connections reached
	Subscriptions uint64 // SUBACK 0x97 (3.1.1: 0x80) filters: mqtt.max_subscriptions reached
	SubsTotal     uint64 // the same, mqtt.max_subscriptions_total reached
	SysPublish    uint64 // publishes to $SYS/...: PUBACK/PUBREC 0x87, 3.1.1 QoS 1/2 disconnected, QoS 0 dropped
	TopicName     uint64 // publishes to another topic clients may not use ($share/...): 0x90, as above
	ProtocolError uint64 // clients disconnected for a protocol error or malformed packet
	// RetainedMessages and RetainedBytes (topic + payload) are what the
	// broker holds now, against mqtt.retained.
	RetainedMessages int
	RetainedBytes    int64
}

// LoginFailureStats counts refused CONNECTs by reason.
type LoginFailureStats struct {
	BadPassword      uint64 // the password file has the user, the password is wrong
	UnknownUser      uint64 // the password file has no such user
	NotAuthorized    uint64 // anonymous where not allowed, or a will topic the ACL denies
	ClientIDMismatch uint64 // client_id_must_match: the client id is not the user name / identity
	ClientIDTaken    uint64 // the client id's session belongs to another identity
	CertIdentity     uint64 // the client certificate has no value in identity_from
	Throttled        uint64 // refused unchecked: too many failures from the address
}

// Reasons lists the counters with their metric label values.
func (l LoginFailureStats) Reasons() []struct {
	Reason string
	N      uint64
} {
	return []struct {
		Reason string
		N      uint64
	}{
		{loginFailureNames[failBadPassword], l.BadPassword},
		{loginFailureNames[failUnknownUser], l.UnknownUser},
		{loginFailureNames[failNotAuthorized], l.NotAuthorized},
		{loginFailureNames[failClientIDMismatch], l.ClientIDMismatch},
		{loginFailureNames[failClientIDTaken], l.ClientIDTaken},
		{loginFailureNames[failCertIdentity], l.CertIdentity},
		{loginFailureNames[failThrottled], l.Throttled},
	}
}

// RefusedStats counts publishes that were not stored, by the reason code an
// MQTT 5 client receives for them.
type RefusedStats struct {
	QuotaExceeded uint64 // 0x97: rate limit or stream full
	TooLarge      uint64 // 0x95: record over the stream's max_record_size
	PayloadFormat uint64 // 0x99: no usable partition key (template failed, invalid key)
	Unspecified   uint64 // 0x80: store unavailable, closing, unknown stream, cancelled
	NotAuthorized uint64 // 0x87: the ACL does not allow the client to publish to the topic
	Retained      uint64 // 0x97: the retained cap (mqtt.retained) would be exceeded
	QoS2Pending   uint64 // 0x97: mqtt.max_qos2_pending QoS 2 publishes await PUBREL
}

// Total is the number of refused publishes.
func (r RefusedStats) Total() uint64 {
	return r.QuotaExceeded + r.TooLarge + r.PayloadFormat + r.Unspecified + r.NotAuthorized + r.Retained + r.QoS2Pending
}

// refusal is why a publish was not stored; it indexes counters.
type refusal uint8

const (
	refusedQuota refusal = iota
	refusedTooLarge
	refusedPayload
	refusedUnspecified
	refusedNotAuthorized
	refusedRetained
	refusedQoS2
	numRefusals
)

// counters are the live values behind Stats, updated on the hot path
// without locks.
type counters struct {
	received, stored, unrouted atomic.Uint64
	refused                    [numRefusals]atomic.Uint64
	droppedQoS0, disconnected  atomic.Uint64

	loginFailures                   [numLoginFailures]atomic.Uint64
	subscribeDenied, deliveryDenied atomic.Uint64
	limits                          [numLimitEvents]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Received: c.received.Load(),
		Stored:   c.stored.Load(),
		Unrouted: c.unrouted.Load(),
		Refused: RefusedStats{
			QuotaExceeded: c.refused[refusedQuota].Load(),
			TooLarge:      c.refused[refusedTooLarge].Load(),
			PayloadFormat: c.refused[refusedPayload].Load(),
			Unspecified:   c.refused[refusedUnspecified].Load(),
			NotAuthorized: c.refused[refusedNotAuthorized].Load(),
			Retained:      c.refused[refusedRetained].Load(),
			QoS2Pending:   c.refused[refusedQoS2].Load(),
		},
		Limits: LimitStats{
			Connections:   c.limits[limitConnections].Load(),
			Subscriptions: c.limits[limitSubscriptions].Load(),
			SubsTotal:     c.limits[limitSubsTotal].Load(),
			SysPublish:    c.limits[limitSysPublish].Load(),
			TopicName:     c.limits[limitTopicName].Load(),
			ProtocolError: c.limits[limitProtocolError].Load(),
		},
		DroppedQoS0:  c.droppedQoS0.Load(),
		Disconnected: c.disconnected.Load(),
		LoginFailures: LoginFailureStats{
			BadPassword:      c.loginFailures[failBadPassword].Load(),
			UnknownUser:      c.loginFailures[failUnknownUser].Load(),
			NotAuthorized:    c.loginFailures[failNotAuthorized].Load(),
			ClientIDMismatch: c.loginFailures[failClientIDMismatch].Load(),
			ClientIDTaken:    c.loginFailures[failClientIDTaken].Load(),
			CertIdentity:     c.loginFailures[failCertIdentity].Load(),
			Throttled:        c.loginFailures[failThrottled].Load(),
		},
		SubscribeDenied: c.subscribeDenied.Load(),
		DeliveryDenied:  c.deliveryDenied.Load(),
	}
}
