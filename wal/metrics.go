package wal

import (
	"sync/atomic"
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

// A slow fdatasync is logged at warn, as etcd does past its 1 s
// warnSyncDuration: a healthy SD card or eMMC syncs a few blocks in
// milliseconds, so seconds mean the card is stalling (wear levelling,
// failing cells) or the disk is overloaded, and an operator reading the
// log should hear of it before writes start failing. One line per log at
// most every slowSyncEvery, counting the slow syncs it stands for, so a
// dying card cannot flood the log either.
const (
	slowSyncThreshold = time.Second
	slowSyncEvery     = 10 * time.Second
)

// slowSyncs limits a log's "slow fdatasync" warnings. Syncs come from the
// committer and, with SyncInterval, from the sync loop, hence atomics.
type slowSyncs struct {
	threshold, every atomic.Int64 // nanoseconds; 0 = the constants above (tests shorten them)
	next             atomic.Int64 // unix nanoseconds before which no warning is logged
	unlogged         atomic.Int64 // slow syncs since the last warning
}

// observeSync records one timed fdatasync of the log's active segment.
func (l *Log) observeSync(d time.Duration) {
	l.opts.Metrics.observeSync(d)
	s := &l.slow
	threshold, every := time.Duration(s.threshold.Load()), time.Duration(s.every.Load())
	if threshold == 0 {
		threshold, every = slowSyncThreshold, slowSyncEvery
	}
	if d < threshold {
		return
	}
	s.unlogged.Add(1)
	now := time.Now().UnixNano()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(every)) {
		return
	}
	l.log.Warn().Int64("took_ms", d.Milliseconds()).Int64("threshold_ms", threshold.Milliseconds()).
		Int64("slow_syncs", s.unlogged.Swap(0)).
		Msg("wal: slow fdatasync: the disk is overloaded or failing (an SD card or eMMC near the end of its life stalls like this)")
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
