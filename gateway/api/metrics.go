package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// apiMetrics are the API's own counters. They live in the Server (no
// globals), and /metrics renders them together with what the store
// reports, in the Prometheus text format written by hand.
type apiMetrics struct {
	mu       sync.Mutex
	requests map[[2]string]*atomic.Int64 // op, error type ("" = ok)
	seconds  map[string]*atomic.Int64    // op -> total microseconds
	shards   map[[2]string]*shardCounters

	putOK, putFailed atomic.Int64

	authFailures map[string]*atomic.Int64 // by reason; fixed set, made once
}

type shardCounters struct {
	records, bytes, throttled atomic.Int64
}

func newAPIMetrics() *apiMetrics {
	m := &apiMetrics{requests: map[[2]string]*atomic.Int64{}, seconds: map[string]*atomic.Int64{},
		shards: map[[2]string]*shardCounters{}, authFailures: map[string]*atomic.Int64{}}
	for _, r := range authReasons {
		m.authFailures[r] = new(atomic.Int64)
	}
	return m
}

func (m *apiMetrics) authFailure(reason string) { m.authFailures[reason].Add(1) }

func (m *apiMetrics) request(op, errType string, d time.Duration) {
	if op == "" {
		op = "unknown"
	}
	m.mu.Lock()
	c, ok := m.requests[[2]string{op, errType}]
	if !ok {
		c = new(atomic.Int64)
		m.requests[[2]string{op, errType}] = c
	}
	t, ok := m.seconds[op]
	if !ok {
		t = new(atomic.Int64)
		m.seconds[op] = t
	}
	m.mu.Unlock()
	c.Add(1)
	t.Add(d.Microseconds())
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

// MetricsWriter collects samples by metric family and writes each family
// as one group (HELP, TYPE, samples), as the Prometheus text format
// requires, whatever order the samples were produced in. /metrics hands
// it to Options.ExtraMetrics, so other parts of the gateway write their
// families the same way.
type MetricsWriter struct {
	order []string
	fams  map[string]*bytes.Buffer
}

func newMetricsWriter() *MetricsWriter { return &MetricsWriter{fams: map[string]*bytes.Buffer{}} }

// Family declares a metric family (typ: counter, gauge, ...); declaring
// one twice keeps the first.
func (w *MetricsWriter) Family(name, typ, help string) {
	if _, ok := w.fams[name]; ok {
		return
	}
	b := &bytes.Buffer{}
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	w.fams[name] = b
	w.order = append(w.order, name)
}

// Sample adds one sample to its family; labels are name, value pairs.
func (w *MetricsWriter) Sample(name string, v float64, labels ...string) {
	b, ok := w.fams[name]
	if !ok {
		w.Family(name, "untyped", name)
		b = w.fams[name]
	}
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	b.WriteByte('\n')
}

func (w *MetricsWriter) bytes() []byte {
	var out bytes.Buffer
	for _, name := range w.order {
		out.Write(w.fams[name].Bytes())
	}
	return out.Bytes()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// serveMetrics is GET /metrics.
func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	p := newMetricsWriter()
	now := s.now()
	sm := s.store.Metrics()
	for _, c := range []struct {
		name, help string
		v          int64
	}{
		{"weir_store_appended_records_total", "Records committed by the store (MQTT and HTTP).", sm.Appended},
		{"weir_store_throttled_records_total", "Records refused or dropped by a stream's write rate limit.", sm.Throttled},
		{"weir_store_refused_full_records_total", "Appends refused because a stream or the disk was full.", sm.RefusedFull},
		{"weir_store_retention_deleted_records_total", "Records deleted by retention or the size cap.", sm.RetentionDeleted},
		{"weir_store_unread_deleted_records_total", "Records deleted before a consumer or forwarder read them.", sm.UnreadDeleted},
	} {
		p.Family(c.name, "counter", c.help)
		p.Sample(c.name, float64(c.v))
	}
	p.Family("weir_api_auth_failures_total", "counter", "API requests refused by authentication, authorization or the Host check, by reason.")
	for _, r := range authReasons {
		p.Sample("weir_api_auth_failures_total", float64(s.metrics.authFailures[r].Load()), "reason", r)
	}
	for _, st := range s.store.Streams() {
		name := st.Name()
		p.Family("weir_stream_bytes", "gauge", "Bytes the stream's logs occupy on disk.")
		p.Sample("weir_stream_bytes", float64(st.Bytes()), "stream", name)
		p.Family("weir_stream_retention_seconds", "gauge", "How long the stream keeps records.")
		p.Sample("weir_stream_retention_seconds", st.Config().Retention.D().Seconds(), "stream", name)
		infos := st.Shards()
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
			l := []string{"stream", name, "shard", info.ID}
			p.Family("weir_shard_last_sequence", "gauge", "Last stored sequence number of the shard.")
			p.Sample("weir_shard_last_sequence", float64(last), l...)
			p.Family("weir_shard_trim_horizon_sequence", "gauge", "First sequence number still stored.")
			p.Sample("weir_shard_trim_horizon_sequence", float64(th), l...)
			p.Family("weir_shard_records", "gauge", "Records stored in the shard.")
			p.Sample("weir_shard_records", float64(last+1-th), l...)
			p.Family("weir_shard_appended_records_total", "counter", "Records ever appended to the shard.")
			p.Sample("weir_shard_appended_records_total", float64(last+1-info.StartSeq), l...)
			ls := sh.LogStats()
			p.Family("weir_shard_commit_groups_total", "counter", "Commit groups written to the shard's log since start (appended records / groups = group commit's batching).")
			p.Sample("weir_shard_commit_groups_total", float64(ls.Groups), l...)
			p.Family("weir_shard_syncs_total", "counter", "fdatasync calls on the shard's log since start.")
			p.Sample("weir_shard_syncs_total", float64(ls.Syncs), l...)
			p.Family("weir_shard_bytes", "gauge", "Bytes the shard's log occupies on disk.")
			p.Sample("weir_shard_bytes", float64(sh.Bytes()), l...)
			p.Family("weir_shard_open", "gauge", "1 while the shard takes writes, 0 once closed by a reshard.")
			p.Sample("weir_shard_open", boolf(!info.Closed), l...)
			c := s.metrics.shard(name, info.ID)
			p.Family("weir_api_read_records_total", "counter", "Records returned by GetRecords (both kinds).")
			p.Sample("weir_api_read_records_total", float64(c.records.Load()), l...)
			p.Family("weir_api_read_bytes_total", "counter", "Data and key bytes returned by GetRecords.")
			p.Sample("weir_api_read_bytes_total", float64(c.bytes.Load()), l...)
			p.Family("weir_api_read_throttled_total", "counter", "GetRecords calls refused by the shard's read limits.")
			p.Sample("weir_api_read_throttled_total", float64(c.throttled.Load()), l...)
		}
		cks := s.store.Checkpoints()
		for _, ci := range cks.Consumers(name) {
			pos, err := cks.Get(name, ci.Name)
			if err != nil {
				continue
			}
			p.Family("weir_consumer_lost_records_total", "counter", "Records retention deleted before the consumer read them.")
			p.Sample("weir_consumer_lost_records_total", float64(cks.Lost(name, ci.Name)), "stream", name, "consumer", ci.Name)
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
					lag = last - ck
				}
				l := []string{"stream", name, "consumer", ci.Name, "shard", info.ID}
				p.Family("weir_consumer_lag_records", "gauge", "Records stored after the consumer's checkpoint.")
				p.Sample("weir_consumer_lag_records", float64(lag), l...)
				age := 0.0
				if lag > 0 {
					if t, ok := sh.ArrivalOf(max(ck+1, sh.TrimHorizon())); ok {
						age = max(now.Sub(t).Seconds(), 0)
					}
				}
				p.Family("weir_consumer_lag_seconds", "gauge", "Age of the oldest record the consumer has not processed.")
				p.Sample("weir_consumer_lag_seconds", age, l...)
			}
		}
	}
	s.metrics.mu.Lock()
	reqKeys := make([][2]string, 0, len(s.metrics.requests))
	for k := range s.metrics.requests {
		reqKeys = append(reqKeys, k)
	}
	ops := make([]string, 0, len(s.metrics.seconds))
	for k := range s.metrics.seconds {
		ops = append(ops, k)
	}
	s.metrics.mu.Unlock()
	sort.Slice(reqKeys, func(i, j int) bool {
		return reqKeys[i][0] < reqKeys[j][0] || (reqKeys[i][0] == reqKeys[j][0] && reqKeys[i][1] < reqKeys[j][1])
	})
	sort.Strings(ops)
	for _, k := range reqKeys {
		s.metrics.mu.Lock()
		v := s.metrics.requests[k].Load()
		s.metrics.mu.Unlock()
		code := k[1]
		if code == "" {
			code = "OK"
		}
		p.Family("weir_api_requests_total", "counter", "API requests by operation and outcome (OK or the exception name).")
		p.Sample("weir_api_requests_total", float64(v), "op", k[0], "code", code)
	}
	for _, op := range ops {
		s.metrics.mu.Lock()
		v := s.metrics.seconds[op].Load()
		s.metrics.mu.Unlock()
		p.Family("weir_api_request_seconds_total", "counter", "Time spent answering API requests (long-poll waits included).")
		p.Sample("weir_api_request_seconds_total", float64(v)/1e6, "op", op)
	}
	p.Family("weir_api_put_records_total", "counter", "PutRecord(s) entries by outcome.")
	p.Sample("weir_api_put_records_total", float64(s.metrics.putOK.Load()), "outcome", "ok")
	p.Sample("weir_api_put_records_total", float64(s.metrics.putFailed.Load()), "outcome", "failed")
	if s.extraMetrics != nil {
		s.extraMetrics(p)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(p.bytes())
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveHealth is GET /healthz: 200 while every shard's log is healthy, 503
// with the failed shards once one has a sticky I/O error.
func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	type failed struct {
		Stream string `json:"stream"`
		Shard  string `json:"shard"`
		Error  string `json:"error"`
	}
	var bad []failed
	streams := s.store.Streams()
	for _, st := range streams {
		for _, info := range st.Shards() {
			sh, err := st.Shard(info.ID)
			if err != nil {
				continue
			}
			if err := sh.Err(); err != nil {
				bad = append(bad, failed{Stream: st.Name(), Shard: info.ID, Error: err.Error()})
			}
		}
	}
	status := http.StatusOK
	body := map[string]any{"status": "ok", "streams": len(streams)}
	if len(bad) > 0 {
		status = http.StatusServiceUnavailable
		body = map[string]any{"status": "failing", "streams": len(streams), "failed_shards": bad}
	}
	select {
	case <-s.closing:
		status = http.StatusServiceUnavailable
		body["status"] = "closing"
	default:
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
