package forwarder

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector is one forwarder's metrics, labelled with its stream, target,
// kind and sink name as constant labels (what /metrics had before), so several forwarders share the
// families on one registry and each can leave it at Close (a reload that
// removes a forwarder removes its series). Progress is read from Lag at
// scrape time; only the two histograms are observed, once per request.
type collector struct {
	f       *Forwarder
	latency prometheus.Histogram
	batch   prometheus.Histogram

	lagRecords, lagBytes, lagSeconds, sent, resent, lost, filtered, up *prometheus.Desc
}

func newCollector(f *Forwarder) *collector {
	labels := prometheus.Labels{"stream": f.cfg.Stream, "target_stream": f.cfg.Target(), "kind": f.cfg.Kind, "sink": f.cfg.SinkName()}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, labels) }
	return &collector{
		f: f,
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "weir_forwarder_request_duration_seconds",
			Help:        "Time one request to the sink took (a PutRecords, an HTTP POST, an MQTT batch, an object upload), failures included.",
			ConstLabels: labels,
			Buckets:     []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "weir_forwarder_batch_records",
			Help:        "Local records carried by one request to the sink (retries included).",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(1, 2, 10), // 1 .. 512 (and +Inf for aggregated batches)
		}),
		lagRecords: d("weir_forwarder_lag_records", "Local records not yet acknowledged upstream."),
		lagBytes:   d("weir_forwarder_lag_bytes", "Payload bytes of those records (unread ones estimated)."),
		lagSeconds: d("weir_forwarder_lag_seconds", "Age of the oldest record not yet acknowledged upstream."),
		sent:       d("weir_forwarder_sent_records_total", "Records acknowledged upstream since start."),
		resent:     d("weir_forwarder_resent_records_total", "Record retransmissions since start."),
		lost:       d("weir_forwarder_lost_records_total", "Records deleted or refused before they were sent, since start."),
		filtered:   d("weir_forwarder_filtered_records_total", "Records the sink's filter passed over, since start."),
		up:         d("weir_forwarder_up", "1 while the forwarder is running normally, 0 in backoff, paused or stopped."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.latency.Describe(ch)
	c.batch.Describe(ch)
	for _, d := range []*prometheus.Desc{c.lagRecords, c.lagBytes, c.lagSeconds, c.sent, c.resent, c.lost, c.filtered, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.latency.Collect(ch)
	c.batch.Collect(ch)
	l := c.f.Lag()
	up := 0.0
	if l.State.Phase == Running {
		up = 1
	}
	for _, m := range []struct {
		d   *prometheus.Desc
		typ prometheus.ValueType
		v   float64
	}{
		{c.lagRecords, prometheus.GaugeValue, float64(l.Records)},
		{c.lagBytes, prometheus.GaugeValue, float64(l.Bytes)},
		{c.lagSeconds, prometheus.GaugeValue, l.OldestAge.Seconds()},
		{c.sent, prometheus.CounterValue, float64(l.Sent)},
		{c.resent, prometheus.CounterValue, float64(l.Resent)},
		{c.lost, prometheus.CounterValue, float64(l.Lost)},
		{c.filtered, prometheus.CounterValue, float64(l.Filtered)},
		{c.up, prometheus.GaugeValue, up},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.typ, m.v)
	}
}
