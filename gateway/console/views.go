package console

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/shards"
)

func jsonBytes(v any) ([]byte, error) { return json.Marshal(v) }

func (c *Console) serveOverview(w http.ResponseWriter, _ *http.Request, _ api.Grant) error {
	writeJSON(w, http.StatusOK, c.overview())
	return nil
}

func (c *Console) serveHistory(w http.ResponseWriter, _ *http.Request, _ api.Grant) error {
	writeJSON(w, http.StatusOK, map[string]any{"interval_s": c.every.Seconds(), "samples": c.hist.all()})
	return nil
}

type streamView struct {
	Name         string          `json:"name"`
	Retention    string          `json:"retention"`
	MaxBytes     int64           `json:"max_bytes"`
	RateRecords  int             `json:"rate_records_per_sec"` // per shard, 0 = unlimited
	RateBytes    int64           `json:"rate_bytes_per_sec"`
	Bytes        int64           `json:"bytes"`
	Shards       []shardView     `json:"shards"`
	Consumers    []consumerView  `json:"consumers"`
	Forwarders   []forwarderView `json:"forwarders"`
	ReshardCount int             `json:"reshards"`
}

type shardView struct {
	ID        string  `json:"id"`
	Parent    string  `json:"parent,omitempty"`
	Adjacent  string  `json:"adjacent_parent,omitempty"`
	Open      bool    `json:"open"`
	ClosedAt  int64   `json:"closed_at,omitempty"`
	StartHash string  `json:"start_hash"`
	EndHash   string  `json:"end_hash"`
	First     uint64  `json:"first_seq"`
	Last      uint64  `json:"last_seq"`
	Records   uint64  `json:"records"`
	Bytes     int64   `json:"bytes"`
	Rate      float64 `json:"rate"` // records/s over the last sample
	Horizon   float64 `json:"retention_horizon_s"`
	Headroom  float64 `json:"headroom"` // 1 - rate/limit; -1 without a limit
}

type consumerView struct {
	Name      string            `json:"name"`
	Forwarder bool              `json:"forwarder"`
	Records   uint64            `json:"lag_records"`
	Bytes     int64             `json:"lag_bytes"`
	Seconds   float64           `json:"lag_seconds"`
	Shards    map[string]uint64 `json:"checkpoints"`
}

func (c *Console) serveStreams(w http.ResponseWriter, _ *http.Request, g api.Grant) error {
	now := c.now()
	rates := c.overview().rates
	fwds := c.forwarders()
	var out []streamView
	for _, st := range c.src.Store.Streams() {
		if !g.MayUse(st.Name()) {
			continue
		}
		cfg := st.Config()
		v := streamView{Name: st.Name(), Retention: cfg.Retention.D().String(), MaxBytes: cfg.MaxBytes.Bytes(),
			RateRecords: cfg.Rate.RecordsPerSec, RateBytes: cfg.Rate.BytesPerSec.Bytes(), Bytes: st.Bytes()}
		open := map[string]*shards.Shard{}
		for _, info := range st.Shards() {
			sh, err := st.Shard(info.ID)
			if err != nil {
				continue
			}
			open[info.ID] = sh
			sv := shardView{ID: info.ID, Parent: info.ParentID, Adjacent: info.AdjacentParentID, Open: !info.Closed,
				StartHash: info.StartHash.String(), EndHash: info.EndHash.String(),
				First: sh.TrimHorizon(), Last: sh.Last(), Bytes: sh.Bytes(), Rate: rates[st.Name()+"/"+info.ID], Headroom: -1}
			if info.Closed {
				sv.ClosedAt = info.ClosedAt.UnixMilli()
			}
			if info.ParentID != "" {
				v.ReshardCount++
			}
			if sv.Last >= sv.First {
				sv.Records = sv.Last - sv.First + 1
				if t, ok := sh.ArrivalOf(sv.First); ok {
					sv.Horizon = now.Sub(t).Seconds()
				}
			}
			if lim := cfg.Rate.RecordsPerSec; lim > 0 && sv.Open {
				sv.Headroom = max(0, 1-sv.Rate/float64(lim))
			}
			v.Shards = append(v.Shards, sv)
		}
		for _, ci := range c.src.Store.Checkpoints().Consumers(st.Name()) {
			v.Consumers = append(v.Consumers, consumerLag(c.src.Store.Checkpoints(), st.Name(), ci.Name, open, now))
		}
		for _, f := range fwds {
			if f.Stream == st.Name() {
				v.Forwarders = append(v.Forwarders, f)
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"streams": out})
	return nil
}

// consumerLag is how far a checkpoint is behind each shard's end: records,
// bytes (from the shard's average record size) and the age of the oldest
// record it has not processed.
func consumerLag(ck *shards.Checkpoints, stream, name string, open map[string]*shards.Shard, now time.Time) consumerView {
	v := consumerView{Name: name, Forwarder: strings.HasPrefix(name, shards.ForwarderPrefix), Shards: map[string]uint64{}}
	pos, err := ck.Get(stream, name)
	if err != nil {
		return v
	}
	v.Shards = pos
	for id, sh := range open {
		last, first := sh.Last(), sh.TrimHorizon()
		next := first
		if p, ok := pos[id]; ok && p+1 > next {
			next = p + 1
		}
		if last < next {
			continue
		}
		// The shard's own records: other shards' are in the gaps.
		n, _ := sh.RecordsIn(next, last+1)
		v.Records += n
		if held := sh.Records(); held > 0 {
			v.Bytes += int64(float64(n) * float64(sh.DataBytes()) / float64(held))
		}
		if t, ok := sh.ArrivalOf(next); ok {
			v.Seconds = max(v.Seconds, now.Sub(t).Seconds())
		}
	}
	return v
}

type deviceView struct {
	ID          string `json:"client_id"`
	Identity    string `json:"identity"`
	Username    string `json:"username,omitempty"`
	Remote      string `json:"remote"`
	Protocol    string `json:"protocol"`
	Since       int64  `json:"since"`
	MessagesIn  uint64 `json:"messages_in"`
	LastPublish int64  `json:"last_publish,omitempty"`
	Refusals    uint64 `json:"refusals"`
}

const maxPageSize = 500

// serveDevices is one page of the connected clients whose id, identity
// or address contains q (case-insensitive), sorted by client id: the
// browser never holds more than a page of a 10,000-device fleet.
func (c *Console) serveDevices(w http.ResponseWriter, r *http.Request, _ api.Grant) error {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	if size <= 0 {
		size = 50
	}
	size = min(size, maxPageSize)
	page = max(page, 0)
	var clients []ingest.ClientInfo // sorted by id (Broker.Clients)
	if c.src.Clients != nil {
		clients = c.src.Clients()
	}
	matched := clients
	if q != "" {
		matched = nil
		for _, ci := range clients {
			if strings.Contains(strings.ToLower(ci.ID), q) || strings.Contains(strings.ToLower(ci.Identity), q) ||
				strings.Contains(strings.ToLower(ci.Remote), q) {
				matched = append(matched, ci)
			}
		}
	}
	from := min(page*size, len(matched))
	to := min(from+size, len(matched))
	out := make([]deviceView, 0, to-from)
	for _, ci := range matched[from:to] {
		d := deviceView{ID: ci.ID, Identity: ci.Identity, Username: ci.Username, Remote: ci.Remote, Protocol: ci.Protocol,
			Since: ci.Since.UnixMilli(), MessagesIn: ci.MessagesIn, Refusals: ci.Refusals}
		if !ci.LastPublish.IsZero() {
			d.LastPublish = ci.LastPublish.UnixMilli()
		}
		out = append(out, d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(clients), "matched": len(matched), "page": page, "size": size,
		"devices": out})
	return nil
}
