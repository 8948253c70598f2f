package api

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-gateway/weir/shards"
)

// apiMetrics are the API's own counters. They live in the Server (no
// globals); the Server's collector (collector below) reports them with
// what the store reports, on the registry the Server was given.
type apiMetrics struct {
	requests *prometheus.CounterVec   // op, code
	latency  *prometheus.HistogramVec // op

	mu     sync.Mutex
	shards map[[2]string]*shardCounters

	putOK, putFailed atomic.Int64

	authFailures map[string]*atomic.Int64 // by reason; fixed set, made once
}

type shardCounters struct {
	records, bytes, throttled atomic.Int64
	iteratorAge               atomic.Int64 // MillisBehindLatest of the last GetRecords answer
}

func newAPIMetrics() *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_api_requests_total",
			Help: "API requests by operation and outcome (OK or the exception name).",
		}, []string{"op", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "weir_api_request_duration_seconds",
			Help: "Time spent answering API requests, by operation (GetRecords long-poll waits included).",
			// 100 µs to 30 s: the longest long-poll is 20 s.
			Buckets: []float64{100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		shards: map[[2]string]*shardCounters{}, authFailures: map[string]*atomic.Int64{}}
	for _, r := range authReasons {
		m.authFailures[r] = new(atomic.Int64)
	}
	return m
}

func (m *apiMetrics) authFailure(reason string) { m.authFailures[reason].Add(1) }

// request counts one answered request; op is bounded (the operation table
// or "unknown"), errType one of the API's exception names.
func (m *apiMetrics) request(op, errType string, d time.Duration) {
	if op == "" {
		op = "unknown"
	}
	if errType == "" {
		errType = "OK"
	}
	m.requests.WithLabelValues(op, errType).Inc()
	m.latency.WithLabelValues(op).Observe(d.Seconds())
}

func (m *apiMetrics) shard(stream, shard string) *shardCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.shards[[2]string{stream, shard}]
	if !ok {
		c = &shardCounters{}
		m.shards[[2]string{stream, shard}] = c
	}
	return c
}

func (m *apiMetrics) read(stream, shard string, records, bytes int) {
	c := m.shard(stream, shard)
	c.records.Add(int64(records))
	c.bytes.Add(int64(bytes))
}

func (m *apiMetrics) throttled(stream, shard string) { m.shard(stream, shard).throttled.Add(1) }

func (m *apiMetrics) putRecords(ok, failed int) {
	m.putOK.Add(int64(ok))
	m.putFailed.Add(int64(failed))
}

// family is one metric family the collector writes from a snapshot.
type family struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newFamily(typ prometheus.ValueType, name, help string, labels ...string) family {
	return family{desc: prometheus.NewDesc(name, help, labels, nil), typ: typ}
}

func (f family) emit(ch chan<- prometheus.Metric, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(f.desc, f.typ, v, labels...)
}

// collector reports the store (per stream, shard and consumer) and the
// API's counters at scrape time, reading the snapshots the store keeps
// anyway: no request or append pays for a metric it does not observe.
type collector struct {
	s *Server

	appended, throttled, refusedFull, retentionDeleted, unreadDeleted family
	authFailures, putRecords                                          family
	streamBytes, streamDataBytes, streamRetention                     family
	lastSeq, trimSeq, records, shardAppended, groups, syncs, padBytes family
	shardBytes, shardOpen, readRecords, readBytes, readThrottled      family
	consumerLost, consumerLag, consumerLagSeconds                     family
	// Shard-level metrics that EnableEnhancedMonitoring turns on per
	// stream (the others Kinesis names are always reported: API.md).
	incomingBytes, writeThrottled, iteratorAge family
}

func newCollector(s *Server) *collector {
	c, g := prometheus.CounterValue, prometheus.GaugeValue
	sl := []string{"stream", "shard"}
	cl := []string{"stream", "consumer", "shard"}
	return &collector{
		s:                  s,
		appended:           newFamily(c, "weir_store_appended_records_total", "Records committed by the store (MQTT and HTTP)."),
		throttled:          newFamily(c, "weir_store_throttled_records_total", "Records refused or dropped by a stream's write rate limit."),
		refusedFull:        newFamily(c, "weir_store_refused_full_records_total", "Appends refused because a stream or the disk was full."),
		retentionDeleted:   newFamily(c, "weir_store_retention_deleted_records_total", "Records deleted by retention or the size cap."),
		unreadDeleted:      newFamily(c, "weir_store_unread_deleted_records_total", "Records deleted before a consumer or forwarder read them."),
		authFailures:       newFamily(c, "weir_api_auth_failures_total", "API requests refused by authentication, authorization or the Host check, by reason.", "reason"),
		putRecords:         newFamily(c, "weir_api_put_records_total", "PutRecord(s) entries by outcome.", "outcome"),
		streamBytes:        newFamily(g, "weir_stream_bytes", "Bytes allocated on disk to the stream (st_blocks x 512 of its files: its log's segments with their preallocated space, the next segment prepared, its shards' logs from before version 3); what max_bytes caps.", "stream"),
		streamDataBytes:    newFamily(g, "weir_stream_data_bytes", "Bytes of the stream's records as stored (segment headers and frames, no preallocated space).", "stream"),
		streamRetention:    newFamily(g, "weir_stream_retention_seconds", "How long the stream keeps records.", "stream"),
		lastSeq:            newFamily(g, "weir_shard_last_sequence", "Last stored sequence number of the shard.", sl...),
		trimSeq:            newFamily(g, "weir_shard_trim_horizon_sequence", "First sequence number still stored.", sl...),
		records:            newFamily(g, "weir_shard_records", "Records stored in the shard.", sl...),
		shardAppended:      newFamily(c, "weir_shard_appended_records_total", "Records appended to the shard since the gateway started.", sl...),
		groups:             newFamily(c, "weir_stream_commit_groups_total", "Commit groups written to the stream's log, which all its shards share, since start (appended records / groups = group commit's batching).", "stream"),
		syncs:              newFamily(c, "weir_stream_syncs_total", "fdatasync calls on the stream's log since start.", "stream"),
		padBytes:           newFamily(c, "weir_stream_pad_bytes_total", "Bytes of padding that ended writes of the stream's log at a 4 KiB page boundary since start, so that the next sync writes a fresh page instead of rewriting this one (wal/FORMAT.md, Padding).", "stream"),
		shardBytes:         newFamily(g, "weir_shard_bytes", "The shard's share of its stream's bytes on disk, by the share of its records' bytes (its records share the stream's log).", sl...),
		shardOpen:          newFamily(g, "weir_shard_open", "1 while the shard takes writes, 0 once closed by a reshard.", sl...),
		readRecords:        newFamily(c, "weir_api_read_records_total", "Records returned by GetRecords (both kinds).", sl...),
		readBytes:          newFamily(c, "weir_api_read_bytes_total", "Data and key bytes returned by GetRecords.", sl...),
		readThrottled:      newFamily(c, "weir_api_read_throttled_total", "GetRecords calls refused by the shard's read limits.", sl...),
		consumerLost:       newFamily(c, "weir_consumer_lost_records_total", "Records retention deleted before the consumer read them.", "stream", "consumer"),
		consumerLag:        newFamily(g, "weir_consumer_lag_records", "Records stored after the consumer's checkpoint.", cl...),
		consumerLagSeconds: newFamily(g, "weir_consumer_lag_seconds", "Age of the oldest record the consumer has not processed.", cl...),
		incomingBytes:      newFamily(c, "weir_shard_incoming_bytes_total", "Data and key bytes committed to the shard since start (Kinesis IncomingBytes; with EnableEnhancedMonitoring).", sl...),
		writeThrottled:     newFamily(c, "weir_shard_write_throttled_records_total", "Records refused by the shard's write rate since start (Kinesis WriteProvisionedThroughputExceeded; with EnableEnhancedMonitoring).", sl...),
		iteratorAge:        newFamily(g, "weir_shard_iterator_age_seconds", "MillisBehindLatest/1000 of the shard's last GetRecords answer (Kinesis IteratorAgeMilliseconds; with EnableEnhancedMonitoring).", sl...),
	}
}

func (c *collector) families() []family {
	return []family{c.appended, c.throttled, c.refusedFull, c.retentionDeleted, c.unreadDeleted,
		c.authFailures, c.putRecords, c.streamBytes, c.streamDataBytes, c.streamRetention,
		c.lastSeq, c.trimSeq, c.records, c.shardAppended, c.groups, c.syncs, c.padBytes,
		c.shardBytes, c.shardOpen, c.readRecords, c.readBytes, c.readThrottled,
		c.consumerLost, c.consumerLag, c.consumerLagSeconds,
		c.incomingBytes, c.writeThrottled, c.iteratorAge}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.s.metrics.requests.Describe(ch)
	c.s.metrics.latency.Describe(ch)
	for _, f := range c.families() {
		ch <- f.desc
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.metrics.requests.Collect(ch)
	s.metrics.latency.Collect(ch)
	now := s.now()
	sm := s.store.Metrics()
	c.appended.emit(ch, float64(sm.Appended))
	c.throttled.emit(ch, float64(sm.Throttled))
	c.refusedFull.emit(ch, float64(sm.RefusedFull))
	c.retentionDeleted.emit(ch, float64(sm.RetentionDeleted))
	c.unreadDeleted.emit(ch, float64(sm.UnreadDeleted))
	for _, r := range authReasons {
		c.authFailures.emit(ch, float64(s.metrics.authFailures[r].Load()), r)
	}
	c.putRecords.emit(ch, float64(s.metrics.putOK.Load()), "ok")
	c.putRecords.emit(ch, float64(s.metrics.putFailed.Load()), "failed")
	for _, st := range s.store.Streams() {
		c.collectStream(ch, st, now)
	}
}

func (c *collector) collectStream(ch chan<- prometheus.Metric, st *shards.Stream, now time.Time) {
	name := st.Name()
	c.streamBytes.emit(ch, float64(st.Bytes()), name)
	c.streamDataBytes.emit(ch, float64(st.DataBytes()), name)
	c.streamRetention.emit(ch, st.Config().Retention.D().Seconds(), name)
	ls := st.LogStats()
	c.groups.emit(ch, float64(ls.Groups), name)
	c.syncs.emit(ch, float64(ls.Syncs), name)
	c.padBytes.emit(ch, float64(ls.PadBytes), name)
	infos := st.Shards()
	enhanced := map[string]bool{}
	for _, m := range st.EnhancedMetrics() {
		enhanced[m] = true
	}
	lasts := map[string]uint64{}
	tips := map[string]*shards.Shard{}
	for _, info := range infos {
		sh, err := st.Shard(info.ID)
		if err != nil {
			continue
		}
		tips[info.ID] = sh
		last := lastSeq(sh, info)
		lasts[info.ID] = last
		th := max(sh.TrimHorizon(), info.StartSeq)
		l := []string{name, info.ID}
		c.lastSeq.emit(ch, float64(last), l...)
		c.trimSeq.emit(ch, float64(th), l...)
		c.records.emit(ch, float64(sh.Records()), l...)
		c.shardAppended.emit(ch, float64(sh.Appended()), l...)
		c.shardBytes.emit(ch, float64(sh.Bytes()), l...)
		c.shardOpen.emit(ch, boolf(!info.Closed), l...)
		rc := c.s.metrics.shard(name, info.ID)
		c.readRecords.emit(ch, float64(rc.records.Load()), l...)
		c.readBytes.emit(ch, float64(rc.bytes.Load()), l...)
		c.readThrottled.emit(ch, float64(rc.throttled.Load()), l...)
		in, thr := sh.WriteStats()
		if enhanced["IncomingBytes"] {
			c.incomingBytes.emit(ch, float64(in), l...)
		}
		if enhanced["WriteProvisionedThroughputExceeded"] {
			c.writeThrottled.emit(ch, float64(thr), l...)
		}
		if enhanced["IteratorAgeMilliseconds"] {
			c.iteratorAge.emit(ch, float64(rc.iteratorAge.Load())/1000, l...)
		}
	}
	cks := c.s.store.Checkpoints()
	for _, ci := range cks.Consumers(name) {
		pos, err := cks.Get(name, ci.Name)
		if err != nil {
			continue
		}
		c.consumerLost.emit(ch, float64(cks.Lost(name, ci.Name)), name, ci.Name)
		for _, info := range infos {
			sh := tips[info.ID]
			if sh == nil {
				continue
			}
			last := lasts[info.ID]
			ck, ok := pos[info.ID]
			if !ok {
				ck = info.StartSeq - 1
			}
			lag := uint64(0)
			if last > ck {
				// The shard's own records: other shards' are in the gaps.
				lag, _ = sh.RecordsIn(ck+1, last+1)
			}
			l := []string{name, ci.Name, info.ID}
			c.consumerLag.emit(ch, float64(lag), l...)
			age := 0.0
			if lag > 0 {
				if t, ok := sh.ArrivalOf(max(ck+1, sh.TrimHorizon())); ok {
					age = max(now.Sub(t).Seconds(), 0)
				}
			}
			c.consumerLagSeconds.emit(ch, age, l...)
		}
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
