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
	out := make([]api.ForwarderStatus, 0, len(p.fwds))
	for _, f := range p.fwds {
		cfg, lag := f.Config(), f.Lag()
		out = append(out, api.ForwarderStatus{
			Stream: cfg.Stream, TargetStream: cfg.Target(), Consumer: f.Consumer(), Kind: cfg.Kind, Sink: cfg.SinkName(),
			Records: lag.Records, Bytes: lag.Bytes, OldestAge: lag.OldestAge,
			State: lag.State, LastError: lag.LastError, Sent: lag.Sent, Resent: lag.Resent, Lost: lag.Lost, Filtered: lag.Filtered,
		})
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
		writeForwarderMetrics(m, d.forwarderStatus())
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
}

func writeForwarderMetrics(m *api.MetricsWriter, fs []api.ForwarderStatus) {
	type metric struct {
		name, typ, help string
		v               func(api.ForwarderStatus) float64
	}
	for _, mt := range []metric{
		{"weir_forwarder_lag_records", "gauge", "Local records not yet acknowledged upstream.", func(f api.ForwarderStatus) float64 { return float64(f.Records) }},
		{"weir_forwarder_lag_bytes", "gauge", "Payload bytes of those records (unread ones estimated).", func(f api.ForwarderStatus) float64 { return float64(f.Bytes) }},
		{"weir_forwarder_lag_seconds", "gauge", "Age of the oldest record not yet acknowledged upstream.", func(f api.ForwarderStatus) float64 { return f.OldestAge.Seconds() }},
		{"weir_forwarder_sent_records_total", "counter", "Records acknowledged upstream since start.", func(f api.ForwarderStatus) float64 { return float64(f.Sent) }},
		{"weir_forwarder_resent_records_total", "counter", "Record retransmissions since start.", func(f api.ForwarderStatus) float64 { return float64(f.Resent) }},
		{"weir_forwarder_lost_records_total", "counter", "Records deleted or refused before they were sent, since start.", func(f api.ForwarderStatus) float64 { return float64(f.Lost) }},
		{"weir_forwarder_filtered_records_total", "counter", "Records the sink's filter passed over, since start.", func(f api.ForwarderStatus) float64 { return float64(f.Filtered) }},
		{"weir_forwarder_up", "gauge", "1 while the forwarder is running normally, 0 in backoff, paused or stopped.", func(f api.ForwarderStatus) float64 {
			if f.State == "running" {
				return 1
			}
			return 0
		}},
	} {
		m.Family(mt.name, mt.typ, mt.help)
		for _, f := range fs {
			m.Sample(mt.name, mt.v(f), "stream", f.Stream, "target_stream", f.TargetStream, "kind", f.Kind, "sink", f.Sink)
		}
	}
}
