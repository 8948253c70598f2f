package console

import (
	"errors"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/shards"
)

// The record browser reads shards through the store's one read path
// (Shard.Read, Changed), as every other reader does.

type recordView struct {
	Shard    string                `json:"shard"`
	Seq      uint64                `json:"seq"`
	Key      string                `json:"key"`
	Topic    string                `json:"topic,omitempty"`
	ClientID string                `json:"client_id,omitempty"`
	QoS      byte                  `json:"qos"`
	Arrival  int64                 `json:"arrival"`
	Props    []shards.UserProperty `json:"props,omitempty"`
	Payload  Decoded               `json:"payload"`
}

const (
	defaultLimit = 50
	maxLimit     = 200
	// tailBacklog: a live tail further behind than this skips ahead (and
	// says how many it skipped) rather than replaying a flood.
	tailBacklog = 200
	// tailEvery paces a live tail: at most this often a batch.
	tailEvery = 250 * time.Millisecond
)

// cursor is where a browse or tail reads next in each shard.
type cursor struct {
	stream *shards.Stream
	shards []*shards.Shard
	next   map[string]uint64
}

// openCursor resolves stream, shard (optional: all shards) and from:
// "latest" (the last limit records), "trim_horizon", "seq" (with seq=N;
// one shard) or "time" (with time=RFC 3339 or unix ms).
func (c *Console) openCursor(r *http.Request, g api.Grant, limit int) (*cursor, error) {
	q := r.URL.Query()
	name := q.Get("stream")
	if !g.MayUse(name) {
		return nil, errorf(http.StatusForbidden, "access key "+g.KeyID+" may not read stream "+name)
	}
	st, err := c.src.Store.Stream(name)
	if err != nil {
		return nil, errorf(http.StatusNotFound, "no stream "+strconv.Quote(name))
	}
	cur := &cursor{stream: st, next: map[string]uint64{}}
	if id := q.Get("shard"); id != "" {
		sh, err := st.Shard(id)
		if err != nil {
			return nil, errorf(http.StatusNotFound, "no shard "+strconv.Quote(id)+" in "+name)
		}
		cur.shards = []*shards.Shard{sh}
	} else {
		for _, info := range st.Shards() {
			if sh, err := st.Shard(info.ID); err == nil {
				cur.shards = append(cur.shards, sh)
			}
		}
	}
	from := q.Get("from")
	// A shard's sequence numbers have the stream's other shards' records
	// between them: "latest" looks back that much further.
	spread := uint64(max(1, len(st.Shards())))
	for _, sh := range cur.shards {
		first, last := sh.TrimHorizon(), sh.Last()
		var n uint64
		switch from {
		case "", "latest":
			n = max(first, (last+1)-min(uint64(limit)*spread, last+1))
		case "trim_horizon":
			n = first
		case "seq":
			if len(cur.shards) != 1 {
				return nil, errorf(http.StatusBadRequest, "from=seq needs a shard")
			}
			v, err := strconv.ParseUint(q.Get("seq"), 10, 64)
			if err != nil {
				return nil, errorf(http.StatusBadRequest, "seq must be a sequence number")
			}
			n = max(first, v)
		case "time":
			t, err := parseTime(q.Get("time"))
			if err != nil {
				return nil, errorf(http.StatusBadRequest, "time must be RFC 3339 or unix milliseconds")
			}
			n = sh.SeqAtTime(t)
		case "now":
			n = last + 1
		default:
			return nil, errorf(http.StatusBadRequest, "from must be latest, trim_horizon, seq, time or now")
		}
		cur.next[sh.ID()] = n
	}
	return cur, nil
}

func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339, s)
}

// read reads up to limit records past the cursor, oldest first by arrival
// across shards, and advances it. skipped counts records a tail jumped
// over.
func (cur *cursor) read(limit int, tail bool) (out []recordView, skipped uint64, err error) {
	for _, sh := range cur.shards {
		id := sh.ID()
		n := max(cur.next[id], sh.TrimHorizon())
		last := sh.Last()
		if last < n {
			cur.next[id] = n
			continue
		}
		if tail && last-n+1 > tailBacklog {
			skip := last - n + 1 - tailBacklog/4
			k, _ := sh.RecordsIn(n, n+skip)
			skipped += k
			n += skip
		}
		recs, next, err := sh.Read(n, limit, 4<<20)
		var te *shards.TrimmedError
		if errors.As(err, &te) {
			n = te.TrimHorizon
			recs, next, err = sh.Read(n, limit, 4<<20)
		}
		if err != nil && len(recs) == 0 {
			return nil, skipped, err
		}
		for _, rec := range recs {
			out = append(out, recordView{Shard: id, Seq: rec.Seq, Key: rec.Key, Topic: rec.Topic, ClientID: rec.ClientID,
				QoS: rec.QoS, Arrival: rec.Arrival, Props: rec.Props, Payload: DecodePayload(rec.Data)})
		}
		cur.next[id] = max(next, n)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Arrival < out[j].Arrival })
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, skipped, nil
}

func limitOf(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || n <= 0 {
		return defaultLimit
	}
	return min(n, maxLimit)
}

func (c *Console) serveRecords(w http.ResponseWriter, r *http.Request, g api.Grant) error {
	limit := limitOf(r)
	cur, err := c.openCursor(r, g, limit)
	if err != nil {
		return err
	}
	recs, _, err := cur.read(limit, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs, "next": cur.next})
	return nil
}

// serveTail streams batches of new records as they are committed: it
// waits on the shards' Changed channels (no polling), at most one batch
// per tailEvery.
func (c *Console) serveTail(w http.ResponseWriter, r *http.Request, g api.Grant) error {
	limit := limitOf(r)
	cur, err := c.openCursor(r, g, limit)
	if err != nil {
		return err
	}
	fl, err := sse(w)
	if err != nil {
		return err
	}
	ctx := r.Context()
	keepalive := time.NewTicker(30 * time.Second)
	defer keepalive.Stop()
	for {
		// Taken before reading, so a commit in between is not missed.
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(keepalive.C)},
		}
		for _, sh := range cur.shards {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(sh.Changed())})
		}
		recs, skipped, err := cur.read(limit, true)
		if err != nil {
			b, _ := jsonBytes(map[string]string{"error": err.Error()})
			_ = writeEvent(w, fl, event{"error", b})
			return nil
		}
		if len(recs) > 0 || skipped > 0 {
			b, _ := jsonBytes(map[string]any{"records": recs, "skipped": skipped})
			if writeEvent(w, fl, event{"records", b}) != nil {
				return nil
			}
		}
		switch i, _, _ := reflect.Select(cases); i {
		case 0:
			return nil
		case 1:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return nil
			}
			fl.Flush()
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(tailEvery):
		}
	}
}
