package wal

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the latency and batching histograms of the logs that share
// it (a store passes one to every shard's log, so a scrape has one series
// per bucket, not one per shard). It is a prometheus.Collector; the owner
// registers it on its own registry. The committer observes once per
// commit group, never per record.
type Metrics struct {
	sync  prometheus.Histogram
	group prometheus.Histogram
}

// NewMetrics makes the histograms.
func NewMetrics() *Metrics {
	return &Metrics{
		sync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_wal_fdatasync_duration_seconds",
			Help: "Time one fdatasync of a shard log took (per commit group with fsync: always, per tick with fsync: interval, and at each segment roll).",
			// 50 µs (a fast NVMe) to 2.5 s (an SD card stalling on wear levelling).
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		group: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_wal_commit_group_records",
			Help:    "Records written by one commit group (one write system call): how much group commit batches.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 .. 4096
		}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.sync.Describe(ch)
	m.group.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.sync.Collect(ch)
	m.group.Collect(ch)
}

func (m *Metrics) observeSync(d time.Duration) {
	if m != nil {
		m.sync.Observe(d.Seconds())
	}
}

func (m *Metrics) observeGroup(records uint64) {
	if m != nil {
		m.group.Observe(float64(records))
	}
}
