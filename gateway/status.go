package gateway

import (
	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/ingest"
)

// liveParts are what the API's status hooks read. The API starts serving
// before Start has made the broker and the forwarders (harnesses may call
// it as soon as MQTT accepts), so the hooks read this snapshot, published
// once Start has them all, never the Daemon's fields being written.
type liveParts struct {
	broker *ingest.Broker
	fwds   []*forwarder.Forwarder
}

// forwarderStatus reports every forwarder's Lag for DescribeGateway.
func (d *Daemon) forwarderStatus() []api.ForwarderStatus {
	p := d.live.Load()
	if p == nil {
		return nil
	}
	return forwarderStatuses(p.fwds, nil)
}

// forwarderStatuses reads each forwarder's Lag once; up, when not nil,
// gets whether each is running normally.
func forwarderStatuses(fwds []*forwarder.Forwarder, up *[]bool) []api.ForwarderStatus {
	out := make([]api.ForwarderStatus, 0, len(fwds))
	for _, f := range fwds {
		cfg, lag := f.Config(), f.Lag()
		out = append(out, api.ForwarderStatus{
			Stream: cfg.Stream, TargetStream: cfg.TargetStream, Consumer: f.Consumer(),
			Records: lag.Records, Bytes: lag.Bytes, OldestAge: lag.OldestAge,
			State: lag.State.String(), LastError: lag.LastError, Sent: lag.Sent, Resent: lag.Resent, Lost: lag.Lost,
		})
		if up != nil {
			*up = append(*up, lag.State.Phase == forwarder.Running)
		}
	}
	return out
}

// writeMetrics adds the broker's publish counters and the forwarders'
// progress to /metrics.
func (d *Daemon) writeMetrics(m *api.MetricsWriter) {
	p := d.live.Load()
	if p == nil {
		return
	}
	if p.broker != nil {
		writeIngestMetrics(m, p.broker.Stats())
	}
	if len(p.fwds) > 0 {
		var up []bool
		fs := forwarderStatuses(p.fwds, &up)
		writeForwarderMetrics(m, fs, up)
	}
}

func writeIngestMetrics(m *api.MetricsWriter, s ingest.Stats) {
	counter := func(name, help string, v uint64) {
		m.Family(name, "counter", help)
		m.Sample(name, float64(v))
	}
	counter("weir_mqtt_received_total", "Publishes from devices seen by the ingest hook.", s.Received)
	counter("weir_mqtt_stored_total", "Publishes accepted by the store (QoS 1/2 durable, QoS 0 queued).", s.Stored)
	counter("weir_mqtt_unrouted_total", "Publishes that matched no route (delivered to subscribers, not stored).", s.Unrouted)
	m.Family("weir_mqtt_refused_total", "counter", "Publishes not stored, by the MQTT 5 reason code a client gets.")
	for _, r := range []struct {
		reason string
		v      uint64
	}{
		{"quota_exceeded", s.Refused.QuotaExceeded},
		{"too_large", s.Refused.TooLarge},
		{"payload_format", s.Refused.PayloadFormat},
		{"unspecified", s.Refused.Unspecified},
		{"not_authorized", s.Refused.NotAuthorized},
		{"retained_cap", s.Refused.Retained},
		{"qos2_pending", s.Refused.QoS2Pending},
	} {
		m.Sample("weir_mqtt_refused_total", float64(r.v), "reason", r.reason)
	}
	counter("weir_mqtt_dropped_qos0_total", "Refused QoS 0 publishes (dropped silently: QoS 0 has no acknowledgement).", s.DroppedQoS0)
	counter("weir_mqtt_disconnected_total", "MQTT 3.1.1 clients disconnected because a QoS 1/2 publish was refused.", s.Disconnected)
	m.Family("weir_mqtt_connections", "gauge", "TCP connections open now (including those before CONNECT).")
	m.Sample("weir_mqtt_connections", float64(s.Connections))
	m.Family("weir_mqtt_auth_failures_total", "counter", "Refused MQTT logins (CONNECTs), by reason.")
	for _, r := range s.LoginFailures.Reasons() {
		m.Sample("weir_mqtt_auth_failures_total", float64(r.N), "reason", r.Reason)
	}
	counter("weir_mqtt_subscribe_denied_total", "SUBSCRIBE filters the ACL refused.", s.SubscribeDenied)
	counter("weir_mqtt_delivery_denied_total", "Messages not delivered to a subscriber the ACL does not let read the topic.", s.DeliveryDenied)
	m.Family("weir_mqtt_limit_refused_total", "counter", "Connections, subscriptions and publishes refused by an abuse limit or as a protocol error before the ingest hook.")
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
		m.Sample("weir_mqtt_limit_refused_total", float64(r.v), "limit", r.limit)
	}
	m.Family("weir_mqtt_retained_messages", "gauge", "Retained messages held (cap: mqtt.retained.max_messages).")
	m.Sample("weir_mqtt_retained_messages", float64(s.Limits.RetainedMessages))
	m.Family("weir_mqtt_retained_bytes", "gauge", "Bytes of retained messages held, topic + payload (cap: mqtt.retained.max_bytes).")
	m.Sample("weir_mqtt_retained_bytes", float64(s.Limits.RetainedBytes))
}

// writeForwarderMetrics writes the families of fs; up[i] says whether
// fs[i] is running normally.
func writeForwarderMetrics(m *api.MetricsWriter, fs []api.ForwarderStatus, up []bool) {
	type metric struct {
		name, typ, help string
		v               func(i int) float64
	}
	for _, mt := range []metric{
		{"weir_forwarder_lag_records", "gauge", "Local records not yet acknowledged upstream.", func(i int) float64 { return float64(fs[i].Records) }},
		{"weir_forwarder_lag_bytes", "gauge", "Payload bytes of those records (unread ones estimated).", func(i int) float64 { return float64(fs[i].Bytes) }},
		{"weir_forwarder_lag_seconds", "gauge", "Age of the oldest record not yet acknowledged upstream.", func(i int) float64 { return fs[i].OldestAge.Seconds() }},
		{"weir_forwarder_sent_records_total", "counter", "Records acknowledged upstream since start.", func(i int) float64 { return float64(fs[i].Sent) }},
		{"weir_forwarder_resent_records_total", "counter", "Record retransmissions since start.", func(i int) float64 { return float64(fs[i].Resent) }},
		{"weir_forwarder_lost_records_total", "counter", "Records deleted or refused before they were sent, since start.", func(i int) float64 { return float64(fs[i].Lost) }},
		{"weir_forwarder_up", "gauge", "1 while the forwarder is running normally, 0 in backoff, paused or stopped.", func(i int) float64 {
			if up[i] {
				return 1
			}
			return 0
		}},
	} {
		m.Family(mt.name, mt.typ, mt.help)
		for i, f := range fs {
			m.Sample(mt.name, mt.v(i), "stream", f.Stream, "target_stream", f.TargetStream)
		}
	}
}
