package console

import (
	"encoding/json"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weir-gateway/weir/ingest"
)

// The sampler reads the same counters the metrics collectors read (the
// broker's Stats, the store's Metrics, the shards' sequence numbers, the
// forwarders' Lag) once per interval, whatever the number of browsers:
// one Sample into the ring, one overview pushed to every open page.

// prevCounters are the previous sample's counters, for rates.
type prevCounters struct {
	t                           time.Time
	received, refused, appended uint64
	last                        map[string]uint64 // "stream/shard" → Last()
	rates                       map[string]float64
}

// snapshot is the overview every page gets pushed.
type snapshot struct {
	Sample     Sample             `json:"sample"`
	Interval   float64            `json:"interval_s"`
	Ingest     ingestView         `json:"ingest"`
	Streams    int                `json:"streams"`
	Shards     int                `json:"shards"`
	DiskTotal  int64              `json:"disk_total"`
	Horizon    float64            `json:"retention_horizon_s"` // age of the oldest record kept, any stream
	Forwarders []forwarderView    `json:"forwarders"`
	rates      map[string]float64 // per shard records/s, for the streams page
}

type ingestView struct {
	Received      uint64            `json:"received"`
	Stored        uint64            `json:"stored"`
	Unrouted      uint64            `json:"unrouted"`
	Refused       map[string]uint64 `json:"refused"`
	LoginFailures map[string]uint64 `json:"login_failures"`
	Limits        map[string]uint64 `json:"limits"`
	Connections   int               `json:"connections"`
}

type forwarderView struct {
	Stream    string  `json:"stream"`
	Target    string  `json:"target_stream"`
	Consumer  string  `json:"consumer"`
	Phase     string  `json:"phase"`
	Reason    string  `json:"reason,omitempty"`
	State     string  `json:"state"`
	LastError string  `json:"last_error,omitempty"`
	Records   int64   `json:"lag_records"`
	Bytes     int64   `json:"lag_bytes"`
	OldestAge float64 `json:"lag_seconds"`
	Sent      int64   `json:"sent"`
	Resent    int64   `json:"resent"`
	Lost      int64   `json:"lost"`
}

func refusedMap(r ingest.RefusedStats) map[string]uint64 {
	return map[string]uint64{"quota_exceeded": r.QuotaExceeded, "too_large": r.TooLarge,
		"payload_format": r.PayloadFormat, "unspecified": r.Unspecified, "not_authorized": r.NotAuthorized,
		"retained_cap": r.Retained, "qos2_pending": r.QoS2Pending}
}

// limitMap names the abuse limits' refusals as the metrics label them.
func limitMap(l ingest.LimitStats) map[string]uint64 {
	return map[string]uint64{"max_connections": l.Connections, "max_subscriptions": l.Subscriptions,
		"max_subscriptions_total": l.SubsTotal, "sys_publish": l.SysPublish, "topic_name_invalid": l.TopicName,
		"protocol_error": l.ProtocolError}
}

func (c *Console) forwarders() []forwarderView {
	if c.src.Forwarders == nil {
		return nil
	}
	var out []forwarderView
	for _, f := range c.src.Forwarders() {
		cfg, lag := f.Config(), f.Lag()
		out = append(out, forwarderView{Stream: cfg.Stream, Target: cfg.TargetStream, Consumer: f.Consumer(),
			Phase: lag.State.Phase.String(), Reason: lag.State.Reason, State: lag.State.String(), LastError: lag.LastError,
			Records: lag.Records, Bytes: lag.Bytes, OldestAge: lag.OldestAge.Seconds(), Sent: lag.Sent, Resent: lag.Resent, Lost: lag.Lost})
	}
	return out
}

// sample takes one Sample and overview, stores and pushes them.
func (c *Console) sample() {
	now := c.now()
	snap := snapshot{Interval: c.every.Seconds()}
	s := Sample{T: now.UnixMilli()}
	var st ingest.Stats
	if c.src.Ingest != nil {
		st = c.src.Ingest()
	}
	snap.Ingest = ingestView{Received: st.Received, Stored: st.Stored, Unrouted: st.Unrouted,
		Refused: refusedMap(st.Refused), LoginFailures: map[string]uint64{}, Limits: limitMap(st.Limits), Connections: st.Connections}
	for _, r := range st.LoginFailures.Reasons() {
		snap.Ingest.LoginFailures[r.Reason] = r.N
	}
	s.Conns = st.Connections
	m := c.src.Store.Metrics()

	c.mu.Lock()
	prev := c.prev
	c.mu.Unlock()
	dt := now.Sub(prev.t).Seconds()
	cur := prevCounters{t: now, received: st.Received, refused: st.Refused.Total(), appended: uint64(m.Appended),
		last: map[string]uint64{}, rates: map[string]float64{}}
	var bytesRate float64
	var oldest int64
	for _, stream := range c.src.Store.Streams() {
		snap.Streams++
		s.DiskUsed += stream.Bytes()
		for _, info := range stream.Shards() {
			sh, err := stream.Shard(info.ID)
			if err != nil {
				continue
			}
			snap.Shards++
			key := stream.Name() + "/" + info.ID
			last, first := sh.Last(), sh.TrimHorizon()
			// Rates count the records appended, not sequence numbers,
			// which have other shards' records in their gaps.
			appended := uint64(sh.Appended())
			cur.last[key] = appended
			if p, ok := prev.last[key]; ok && dt > 0 && appended > p {
				n := float64(appended - p)
				cur.rates[key] = n / dt
				if held := sh.Records(); held > 0 {
					bytesRate += n * float64(sh.DataBytes()) / float64(held) / dt
				}
			}
			if last >= first && last > 0 {
				if t, ok := sh.ArrivalOf(first); ok && (oldest == 0 || t.UnixMilli() < oldest) {
					oldest = t.UnixMilli()
				}
			}
		}
	}
	if !prev.t.IsZero() && dt > 0 {
		s.Msgs = rate(prev.received, cur.received, dt)
		s.Refused = rate(prev.refused, cur.refused, dt)
		s.Records = rate(prev.appended, cur.appended, dt)
		s.Bytes = bytesRate
	}
	if oldest > 0 {
		snap.Horizon = now.Sub(time.UnixMilli(oldest)).Seconds()
	}
	var fs unix.Statfs_t
	if c.src.DataDir != "" && unix.Statfs(c.src.DataDir, &fs) == nil {
		s.DiskFree = int64(fs.Bavail) * int64(fs.Bsize)
		snap.DiskTotal = int64(fs.Blocks) * int64(fs.Bsize)
	}
	snap.Forwarders = c.forwarders()
	for _, f := range snap.Forwarders {
		s.FwdLag += f.Records
		s.FwdLagSec = max(s.FwdLagSec, f.OldestAge)
	}
	snap.Sample = s
	snap.rates = cur.rates
	c.hist.add(s)
	c.mu.Lock()
	c.prev, c.last = cur, snap
	c.mu.Unlock()
	if b, err := json.Marshal(snap); err == nil {
		c.hub.broadcast(event{name: "overview", data: b})
	}
}

func rate(prev, cur uint64, dt float64) float64 {
	if cur < prev {
		return 0
	}
	return float64(cur-prev) / dt
}

// overview is the latest snapshot.
func (c *Console) overview() snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
