package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the broker's counters (Stats, read at scrape time:
// the publish path pays nothing for them) and the publish→PUBACK
// histogram, the one metric the publish path observes itself.
type collector struct {
	b   *Broker
	ack prometheus.Histogram

	received, stored, unrouted, refused, droppedQoS0, disconnected *prometheus.Desc
	connections, authFailures, subscribeDenied, deliveryDenied     *prometheus.Desc
	limitRefused, retainedMessages, retainedBytes                  *prometheus.Desc
}

func newCollector(b *Broker) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		b: b,
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_mqtt_publish_ack_duration_seconds",
			Help: "Time from a QoS 1/2 publish reaching the ingest hook to its record being durable (the PUBACK/PUBREC leaves right after); stored publishes only.",
			// 100 µs (fsync: interval, or an idle NVMe) to 5 s.
			Buckets: []float64{100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		received:        d("weir_mqtt_received_total", "Publishes from devices seen by the ingest hook."),
		stored:          d("weir_mqtt_stored_total", "Publishes accepted by the store (QoS 1/2 durable, QoS 0 queued)."),
		unrouted:        d("weir_mqtt_unrouted_total", "Publishes that matched no route (delivered to subscribers, not stored)."),
		refused:         d("weir_mqtt_refused_total", "Publishes not stored, by the MQTT 5 reason code a client gets.", "reason"),
		droppedQoS0:     d("weir_mqtt_dropped_qos0_total", "Refused QoS 0 publishes (dropped silently: QoS 0 has no acknowledgement)."),
		disconnected:    d("weir_mqtt_disconnected_total", "MQTT 3.1.1 clients disconnected because a QoS 1/2 publish was refused."),
		connections:     d("weir_mqtt_connections", "TCP connections open now (including those before CONNECT)."),
		authFailures:    d("weir_mqtt_auth_failures_total", "Refused MQTT logins (CONNECTs), by reason.", "reason"),
		subscribeDenied: d("weir_mqtt_subscribe_denied_total", "SUBSCRIBE filters the ACL refused."),
		deliveryDenied:  d("weir_mqtt_delivery_denied_total", "Messages not delivered to a subscriber the ACL does not let read the topic."),
		limitRefused: d("weir_mqtt_limit_refused_total",
			"Connections, subscriptions and publishes refused by an abuse limit or as a protocol error before the ingest hook.", "limit"),
		retainedMessages: d("weir_mqtt_retained_messages", "Retained messages held (cap: mqtt.retained.max_messages)."),
		retainedBytes:    d("weir_mqtt_retained_bytes", "Bytes of retained messages held, topic + payload (cap: mqtt.retained.max_bytes)."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.ack.Describe(ch)
	for _, d := range []*prometheus.Desc{c.received, c.stored, c.unrouted, c.refused, c.droppedQoS0,
		c.disconnected, c.connections, c.authFailures, c.subscribeDenied, c.deliveryDenied,
		c.limitRefused, c.retainedMessages, c.retainedBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.ack.Collect(ch)
	s := c.b.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.received, s.Received)
	counter(c.stored, s.Stored)
	counter(c.unrouted, s.Unrouted)
	for _, r := range []struct {
		reason string
		v      uint64
	}{
		{refusalNames[refusedQuota], s.Refused.QuotaExceeded},
		{refusalNames[refusedTooLarge], s.Refused.TooLarge},
		{refusalNames[refusedPayload], s.Refused.PayloadFormat},
		{refusalNames[refusedUnspecified], s.Refused.Unspecified},
		{refusalNames[refusedNotAuthorized], s.Refused.NotAuthorized},
		{refusalNames[refusedRetained], s.Refused.Retained},
		{refusalNames[refusedQoS2], s.Refused.QoS2Pending},
	} {
		counter(c.refused, r.v, r.reason)
	}
	counter(c.droppedQoS0, s.DroppedQoS0)
	counter(c.disconnected, s.Disconnected)
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(s.Connections))
	for _, r := range s.LoginFailures.Reasons() {
		counter(c.authFailures, r.N, r.Reason)
	}
	counter(c.subscribeDenied, s.SubscribeDenied)
	counter(c.deliveryDenied, s.DeliveryDenied)
	for _, r := range []struct {
		limit string
		v     uint64
	}{
		{"max_connections", s.Limits.Connections},
		{"max_subscriptions", s.Limits.Subscriptions},
		{"max_subscriptions_total", s.Limits.SubsTotal},
		{"sys_publish", s.Limits.SysPublish},
		{"topic_name_invalid", s.Limits.TopicName},
		{"protocol_error", s.Limits.ProtocolError},
	} {
		counter(c.limitRefused, r.v, r.limit)
	}
	ch <- prometheus.MustNewConstMetric(c.retainedMessages, prometheus.GaugeValue, float64(s.Limits.RetainedMessages))
	ch <- prometheus.MustNewConstMetric(c.retainedBytes, prometheus.GaugeValue, float64(s.Limits.RetainedBytes))
}
