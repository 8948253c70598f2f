package ingest

import (
	"context"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/shards"
)

// pendingPublish is a QoS ≥ 1 publish queued in the sink and deferred in
// mochi: the sink's completion (on the shard log's completion goroutine,
// after the group's fsync) answers it. Pooled: it also holds the record,
// so a publish costs no allocation here.
type pendingPublish struct {
	h     *publishHook
	cl    *mqtt.Client
	pk    packets.Packet
	rt    *route
	start time.Time
	d     *mqtt.DeferredPublish
	rec   shards.Record
}

var pendingPool = sync.Pool{New: func() any { return new(pendingPublish) }}

// deferPublish queues a routed QoS ≥ 1 publish and tells mochi the answer
// comes later. The read goroutine returns to reading at once; the record's
// payload is copied into its frame before AppendDeferred returns, so the
// packet's buffer is not kept.
func (h *publishHook) deferPublish(ctx context.Context, cl *mqtt.Client, pk *packets.Packet, rt *route, key string, now time.Time) error {
	p := pendingPool.Get().(*pendingPublish)
	p.h, p.cl, p.rt, p.start = h, cl, rt, now
	p.pk = *pk // apart: in the tuple above, *pk went through an 800-byte temporary on the stack
	p.d = h.server.DeferPublish(cl, pk)
	p.rec = shards.Record{
		Key:      key,
		Data:     pk.Payload,
		Topic:    pk.TopicName,
		ClientID: cl.ID,
		QoS:      pk.FixedHeader.Qos,
		Props:    userProps(pk.Properties.User),
	}
	if err := h.deferred.AppendDeferred(ctx, rt.stream, &p.rec, shards.AppendOptions{}, p); err != nil {
		p.Appended(shards.Appended{}, err)
	}
	return mqtt.ErrPublishDeferred
}

// Appended implements shards.Completion: it answers the publish, in the
// client's order (mochi keeps it), and recycles p.
func (p *pendingPublish) Appended(_ shards.Appended, err error) {
	h, d := p.h, p.d
	var answer error
	if err != nil {
		answer = h.refuseAs(p.cl, &p.pk, p.rt, classify(err), err, true)
	} else {
		h.ackLatency.Observe(time.Since(p.start).Seconds())
		h.stats.stored.Add(1)
	}
	*p = pendingPublish{}
	pendingPool.Put(p)
	d.Complete(answer)
}
