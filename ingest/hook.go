package ingest

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// Sink stores records. *shards.Store implements it; tests use fakes. For
// QoS ≥ 1 Append must return only once the record is durable (or refused),
// because the acknowledgement leaves as soon as it returns.
type Sink interface {
	Append(ctx context.Context, stream string, rec *shards.Record, o shards.AppendOptions) (shards.Appended, error)
}

// DeferredSink is a Sink that can also queue a record and report its
// outcome later (*shards.Store does). With one, a QoS ≥ 1 publish is not
// waited for on the client's read goroutine: the acknowledgement is sent
// by the completion, after the record is durable.
type DeferredSink interface {
	Sink
	AppendDeferred(ctx context.Context, stream string, rec *shards.Record, o shards.AppendOptions, c shards.Completion) error
}

// publishHook stores routed publishes before mochi acknowledges them. It
// runs on the publishing client's read goroutine. With a DeferredSink, a
// QoS ≥ 1 publish is queued and the read goroutine goes back to reading;
// mochi sends the PUBACK when the sink reports the record durable
// (pending.go). Otherwise the hook waits for the sink: that client's next
// packets wait too, and other clients do not.
type publishHook struct {
	mqtt.HookBase
	router     atomic.Pointer[router] // swapped whole by Broker.Apply
	sink       Sink
	deferred   DeferredSink // sink, if it can report later; nil otherwise
	server     *mqtt.Server
	ctx        context.Context // ends when the broker is forced to stop
	closing    *atomic.Bool
	stats      *counters
	ackLatency prometheus.Histogram // QoS ≥ 1 appends that were stored
	limits     *limitsHook          // publish-time abuse limits (limits.go)
	log        zerolog.Logger
	logLimit   [numRefusals]*limiter
	unrouted   *unroutedLog
}

// mochi's read loop hands the hook its packet by pointer only if the
// method set matches; a mismatch would silently cost the stack again.
var _ mqtt.PublishRefHook = (*publishHook)(nil)

func (h *publishHook) ID() string { return "weir-ingest" }

func (h *publishHook) Provides(b byte) bool {
	return b == mqtt.OnPublish
}

// refusalCodes are what an MQTT 5 client gets in PUBACK/PUBREC, indexed by
// refusal. The reason strings reach the device when it asked for problem
// information, so they say what happened in the device's terms.
var refusalCodes = [numRefusals]packets.Code{
	refusedQuota:         {Code: packets.ErrQuotaExceeded.Code, Reason: "quota exceeded: stream rate limit or size cap reached"},
	refusedTooLarge:      {Code: packets.ErrPacketTooLarge.Code, Reason: "packet too large: payload exceeds the stream's max_record_size"},
	refusedPayload:       {Code: packets.ErrPayloadFormatInvalid.Code, Reason: "payload format invalid: no valid partition key"},
	refusedUnspecified:   {Code: packets.ErrUnspecifiedError.Code, Reason: "unspecified error: not stored, try again later"},
	refusedNotAuthorized: {Code: packets.ErrNotAuthorized.Code, Reason: "not authorized: the ACL does not allow this client to publish to this topic"},
	refusedRetained:      {Code: packets.ErrQuotaExceeded.Code, Reason: "quota exceeded: retained message cap reached"},
	refusedQoS2:          {Code: packets.ErrQuotaExceeded.Code, Reason: "quota exceeded: too many QoS 2 publishes awaiting PUBREL"},
}

var refusalNames = [numRefusals]string{
	refusedQuota:         "quota_exceeded",
	refusedTooLarge:      "too_large",
	refusedPayload:       "payload_format",
	refusedUnspecified:   "unspecified",
	refusedNotAuthorized: "not_authorized",
	refusedRetained:      "retained_cap",
	refusedQoS2:          "qos2_pending",
}

// classify maps a sink error to the refusal a client sees.
func classify(err error) refusal {
	switch {
	case errors.Is(err, shards.ErrThrottled), errors.Is(err, shards.ErrFull):
		return refusedQuota
	case errors.Is(err, shards.ErrTooLarge):
		return refusedTooLarge
	case errors.Is(err, shards.ErrInvalidKey), errors.Is(err, ErrKeyUnresolved):
		return refusedPayload
	default:
		return refusedUnspecified
	}
}

// OnPublish is OnPublishRef for callers that hold the packet by value.
func (h *publishHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	err := h.OnPublishRef(cl, &pk)
	return pk, err
}

// OnPublishRef stores a routed publish and tells mochi what to answer; see
// doc.go for the table. mochi's read loop calls it with its packet by
// pointer (mqtt.PublishRefHook): a by-value packets.Packet is 800 bytes,
// copied into every frame that passes it on, and the read goroutine's
// stack is what a device that published once keeps paying for. pk is not
// changed. The returned error is read by mochi's processPublish: nil
// acknowledges and forwards, ErrRejectPacket sends and forwards nothing,
// and a bare packets.Code becomes an MQTT 5 PUBACK reason (it must not be
// wrapped: mochi type-asserts it).
func (h *publishHook) OnPublishRef(cl *mqtt.Client, pk *packets.Packet) error {
	// The inline client is off, and mochi drops client publishes to $SYS
	// before hooks; both checks keep broker-originated traffic out of
	// the streams should either change.
	if cl.Net.Inline || strings.HasPrefix(pk.TopicName, mqtt.SysPrefix) {
		return nil
	}
	h.stats.received.Add(1)
	// One clock read serves the client's last-publish time, the unrouted
	// log and the publish→ack latency (which so includes routing and the
	// key).
	now := time.Now()
	notePublish(cl, now)
	if why, err := h.limits.admit(cl, pk); err != nil {
		return h.refuse(cl, pk, nil, why, err)
	}
	rt := h.router.Load().match(pk.TopicName)
	if rt == nil {
		h.stats.unrouted.Add(1)
		h.unrouted.note(pk.TopicName, cl.ID, now)
		return nil
	}
	var username string
	if rt.useUsername {
		username = string(cl.Properties.Username)
	}
	key, err := rt.key.Execute(pk.TopicName, cl.ID, username, clientIdentity(cl), pk.Payload)
	if err != nil {
		return h.refuse(cl, pk, rt, refusedPayload, err)
	}
	ctx := connContext(cl.Net.Conn, h.ctx)
	if h.closing.Load() {
		return h.refuse(cl, pk, rt, refusedUnspecified, shards.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return h.refuse(cl, pk, rt, refusedUnspecified, err)
	}
	if pk.FixedHeader.Qos > 0 && h.deferred != nil {
		return h.deferPublish(ctx, cl, pk, rt, key, now)
	}
	rec := &shards.Record{
		Key: key,
		// mochi hands every subscriber the same payload slice, and a
		// QoS 0 record may still be queued after Append returns: the
		// record gets bytes of its own.
		Data:     append([]byte(nil), pk.Payload...),
		Topic:    pk.TopicName,
		ClientID: cl.ID,
		QoS:      pk.FixedHeader.Qos,
		Props:    userProps(pk.Properties.User),
	}
	qos0 := pk.FixedHeader.Qos == 0
	if _, err := h.sink.Append(ctx, rt.stream, rec, shards.AppendOptions{NoWait: qos0}); err != nil {
		return h.refuse(cl, pk, rt, classify(err), err)
	}
	if !qos0 {
		h.ackLatency.Observe(time.Since(now).Seconds())
	}
	h.stats.stored.Add(1)
	return nil
}

func userProps(in []packets.UserProperty) []shards.UserProperty {
	if len(in) == 0 {
		return nil
	}
	out := make([]shards.UserProperty, len(in))
	for i, p := range in {
		out[i] = shards.UserProperty{Key: p.Key, Value: p.Val}
	}
	return out
}

// refuse makes sure a publish that was not stored is neither acknowledged
// nor forwarded to subscribers.
func (h *publishHook) refuse(cl *mqtt.Client, pk *packets.Packet, rt *route, why refusal, err error) error {
	return h.refuseAs(cl, pk, rt, why, err, false)
}

// refuseAs is refuse; deferred says the answer goes to mochi's
// DeferredPublish.Complete rather than back from OnPublish.
func (h *publishHook) refuseAs(cl *mqtt.Client, pk *packets.Packet, rt *route, why refusal, err error, deferred bool) error {
	h.stats.refused[why].Add(1)
	noteRefusal(cl)
	qos, v5 := pk.FixedHeader.Qos, cl.Properties.ProtocolVersion >= 5
	h.logRefusal(cl, pk, rt, why, err)
	switch {
	case qos == 0:
		// Nothing to refuse with: drop it. (A Code here would make mochi
		// forward it as if it had been stored.)
		h.stats.droppedQoS0.Add(1)
		return packets.ErrRejectPacket
	case !v5:
		// MQTT 3.1.1 has no negative PUBACK, and any error but
		// ErrRejectPacket makes mochi send a positive one. Close the
		// socket without a DISCONNECT packet (a server DISCONNECT does not
		// exist in 3.1.1): the client resends the unacknowledged publish
		// after it reconnects. mochi's read loop then sees a closed client
		// and ends without an error, so no will message is published: the
		// device is fine, the gateway refused.
		h.stats.disconnected.Add(1)
		cl.Stop(refusalCodes[why])
		return packets.ErrRejectPacket
	case qos == 2 && deferred:
		// The deferred answer is a PUBREC with the reason (mochi's
		// DeferredPublish.Complete), sent in order with the client's
		// other answers.
		return refusalCodes[why]
	case qos == 2:
		// mochi answers a Code for QoS 2 with a PUBACK (issue #510), which
		// the client cannot match to its QoS 2 flow. Send the PUBREC with
		// the reason ourselves; a reason ≥ 0x80 ends the exchange (MQTT 5
		// §4.3.3), so no PUBREL follows and nothing is left in flight.
		code := refusalCodes[why]
		_ = cl.WritePacket(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Pubrec},
			PacketID:    pk.PacketID,
			ReasonCode:  code.Code,
			Properties:  packets.Properties{ReasonString: code.Reason},
		})
		return packets.ErrRejectPacket
	default:
		return refusalCodes[why]
	}
}

func (h *publishHook) logRefusal(cl *mqtt.Client, pk *packets.Packet, rt *route, why refusal, err error) {
	ok, suppressed := h.logLimit[why].allow(time.Now())
	if !ok {
		return
	}
	e := h.log.Warn()
	if why == refusedUnspecified {
		e = h.log.Error()
	}
	e.Err(err).
		Str("reason", refusalNames[why]).
		Str("client_id", cl.ID).
		Uint8("protocol", cl.Properties.ProtocolVersion).
		Str("topic", pk.TopicName).
		Uint8("qos", pk.FixedHeader.Qos).
		Str("stream", rt.streamName()).
		Uint64("suppressed", suppressed).
		Msg("publish refused")
}
