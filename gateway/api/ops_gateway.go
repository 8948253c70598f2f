package api

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// ForwarderStatus is one forwarder's progress as the daemon reports it
// through Options.Forwarders. It is defined here, not taken from package
// forwarder, so that the API does not depend on the upstream client.
type ForwarderStatus struct {
	Stream       string        // local stream
	TargetStream string        // upstream stream (kinesis) or where a sink delivers ("http:<url>", "mqtt:<broker>")
	Kind         string        // kinesis | http | mqtt | s3
	Sink         string        // its name: the checkpoint is "forwarder:<name>"
	Consumer     string        // its checkpoint name, "forwarder:<name>"
	Records      int64         // local records not yet acknowledged upstream
	Bytes        int64         // their payload bytes (partly estimated)
	OldestAge    time.Duration // age of the oldest of them
	State        string        // running | backoff | paused: <why> | stopped
	LastError    string
	Sent         int64 // records acknowledged upstream since start
	Resent       int64 // retransmissions since start
	Lost         int64 // records deleted or refused before they were sent
	Filtered     int64 // records the sink's filter passed over
}

// Consumer kinds in DescribeGateway.
const (
	kindConsumer  = "consumer"
	kindForwarder = "forwarder"
)

// forwarderNotRunning is the State of a forwarder checkpoint that no
// running forwarder owns (its configuration was removed, or the API runs
// without a daemon).
const forwarderNotRunning = "not running"

type describeGatewayInput struct {
	streamRef
}

// DescribeGatewayOutput is the answer of WeirGateway_20261125.DescribeGateway.
// It is exported for `weir streams`, which decodes it; API.md documents it.
type DescribeGatewayOutput struct {
	Streams []GatewayStream `json:"Streams"`
	// DataDir is the room on the data directory's filesystem; absent if
	// it could not be read.
	DataDir *GatewayDataDir `json:"DataDir,omitempty"`
}

// GatewayDataDir is the data directory's filesystem (statfs).
type GatewayDataDir struct {
	FreeBytes int64 `json:"FreeBytes"` // what weir can still write
	SizeBytes int64 `json:"SizeBytes"`
}

// GatewayStream is one stream in DescribeGateway.
type GatewayStream struct {
	StreamName           string            `json:"StreamName"`
	StreamARN            string            `json:"StreamARN"`
	StreamStatus         string            `json:"StreamStatus"`
	RetentionPeriodHours int               `json:"RetentionPeriodHours"`
	RetentionSeconds     float64           `json:"RetentionSeconds"`
	OpenShardCount       int               `json:"OpenShardCount"`
	ClosedShardCount     int               `json:"ClosedShardCount"`
	Bytes                int64             `json:"Bytes"`     // allocated on disk, what max_bytes caps
	DataBytes            int64             `json:"DataBytes"` // the records as stored
	Records              int64             `json:"Records"`
	Shards               []GatewayShard    `json:"Shards"`
	Consumers            []GatewayConsumer `json:"Consumers"`
}

// GatewayShard is one shard still listed (not yet expired).
type GatewayShard struct {
	ShardId                string `json:"ShardId"`
	ParentShardId          string `json:"ParentShardId,omitempty"`
	AdjacentParentShardId  string `json:"AdjacentParentShardId,omitempty"`
	Closed                 bool   `json:"Closed"`
	StartingSequenceNumber string `json:"StartingSequenceNumber"`
	EndingSequenceNumber   string `json:"EndingSequenceNumber,omitempty"`
	// TrimHorizonSequenceNumber is the first record still stored (one past
	// LastSequenceNumber when none is).
	TrimHorizonSequenceNumber string `json:"TrimHorizonSequenceNumber"`
	// LastSequenceNumber is absent while the shard never held a record.
	LastSequenceNumber string `json:"LastSequenceNumber,omitempty"`
	Records            int64  `json:"Records"`
	Bytes              int64  `json:"Bytes"`     // allocated on disk
	DataBytes          int64  `json:"DataBytes"` // the records as stored
}

// GatewayConsumer is a registered consumer or a forwarder of a stream.
type GatewayConsumer struct {
	ConsumerName string `json:"ConsumerName"`
	Kind         string `json:"Kind"` // consumer | forwarder
	ConsumerARN  string `json:"ConsumerARN,omitempty"`
	// LagRecords counts stored records the consumer has not processed
	// (for a running forwarder: not acknowledged upstream, which includes
	// records in flight).
	LagRecords int64 `json:"LagRecords"`
	// LagSeconds is the age of the oldest of them, 0 when caught up.
	LagSeconds float64 `json:"LagSeconds"`
	// RecordsLost counts records retention deleted before the consumer
	// processed them. For a running forwarder it is the larger of that and
	// the forwarder's own count since it started, which also includes
	// records too large for Kinesis.
	RecordsLost int64                  `json:"RecordsLost"`
	Shards      []GatewayConsumerShard `json:"Shards"`

	// Forwarders only.
	TargetStream string `json:"TargetStream,omitempty"`
	LagBytes     int64  `json:"LagBytes,omitempty"`
	State        string `json:"State,omitempty"`
	LastError    string `json:"LastError,omitempty"`
	Sent         int64  `json:"Sent,omitempty"`
	Resent       int64  `json:"Resent,omitempty"`
	// SinkKind is kinesis, http, mqtt or s3; TargetStream then says where
	// the sink delivers (the upstream stream, "http:<url>", "mqtt:<broker>").
	SinkKind string `json:"SinkKind,omitempty"`
	Filtered int64  `json:"Filtered,omitempty"` // records its filter passed over
}

// GatewayConsumerShard is a consumer's checkpoint in one shard.
type GatewayConsumerShard struct {
	ShardId string `json:"ShardId"`
	// SequenceNumber is the checkpoint, absent if never committed.
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	LagRecords     int64  `json:"LagRecords"`
}

// describeGateway is WeirGateway_20261125.DescribeGateway: every stream (or
// the one named) with its shards, size, and the lag of each registered
// consumer and forwarder, in one call, for `weir streams` and monitoring.
// A consumer's lag counts records still stored after its checkpoint;
// records retention deleted first are reported as RecordsLost, not as lag.
func (s *Server) describeGateway(_ context.Context, req *request) (any, error) {
	var in describeGatewayInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	var streams []*shards.Stream
	if in.StreamName != "" || in.StreamARN != "" {
		st, err := s.stream(req, in.streamRef)
		if err != nil {
			return nil, err
		}
		streams = []*shards.Stream{st}
	} else {
		if err := s.allowListing(req); err != nil {
			return nil, err
		}
		for _, st := range s.store.Streams() {
			if s.visible(req, st.Name()) {
				streams = append(streams, st)
			}
		}
	}
	var fwds []ForwarderStatus
	if s.forwarders != nil {
		fwds = s.forwarders()
	}
	out := DescribeGatewayOutput{Streams: make([]GatewayStream, 0, len(streams))}
	now := s.now()
	for _, st := range streams {
		out.Streams = append(out.Streams, s.describeGatewayStream(st, fwds, now))
	}
	if sp, err := s.store.DiskSpace(); err == nil {
		out.DataDir = &GatewayDataDir{FreeBytes: sp.Free, SizeBytes: sp.Size}
	}
	return out, nil
}

// shardView is one shard's numbers, read once per call so that every
// consumer's lag is computed against the same tips.
type shardView struct {
	info     shards.ShardInfo
	sh       *shards.Shard
	th, last uint64 // first stored, last stored (StartSeq-1 if none ever)
}

func (s *Server) describeGatewayStream(st *shards.Stream, fwds []ForwarderStatus, now time.Time) GatewayStream {
	name := st.Name()
	ret := st.Config().Retention.D()
	g := GatewayStream{
		StreamName: name, StreamARN: s.streamARN(name), StreamStatus: streamActive,
		RetentionPeriodHours: retentionHours(ret), RetentionSeconds: ret.Seconds(),
		Shards: []GatewayShard{}, Consumers: []GatewayConsumer{},
	}
	// The shards' records share the stream's log: the stream's bytes are
	// the log's, the shards' a split of them.
	g.Bytes, g.DataBytes = st.Bytes(), st.DataBytes()
	var views []shardView
	for _, info := range st.Shards() {
		sh, err := st.Shard(info.ID)
		if err != nil {
			continue // expired since the listing
		}
		v := shardView{info: info, sh: sh, last: lastSeq(sh, info)}
		v.th = min(max(sh.TrimHorizon(), info.StartSeq), v.last+1)
		views = append(views, v)
		gs := GatewayShard{
			ShardId: info.ID, ParentShardId: info.ParentID, AdjacentParentShardId: info.AdjacentParentID,
			Closed: info.Closed, StartingSequenceNumber: shards.FormatSeq(info.ID, info.StartSeq),
			TrimHorizonSequenceNumber: shards.FormatSeq(info.ID, v.th),
			Records:                   int64(sh.Records()), Bytes: sh.Bytes(), DataBytes: sh.DataBytes(),
		}
		if info.Closed {
			gs.EndingSequenceNumber = shards.FormatSeq(info.ID, info.EndingSeq())
			g.ClosedShardCount++
		} else {
			g.OpenShardCount++
		}
		if newest, ok := sh.Newest(); ok {
			gs.LastSequenceNumber = shards.FormatSeq(info.ID, newest)
		}
		g.Records += gs.Records
		g.Shards = append(g.Shards, gs)
	}

	running := map[string]ForwarderStatus{}
	for _, f := range fwds {
		if f.Stream == name {
			running[f.Consumer] = f
		}
	}
	cks := s.store.Checkpoints()
	listed := map[string]bool{}
	for _, ci := range cks.Consumers(name) {
		pos, err := cks.Get(name, ci.Name)
		if err != nil {
			continue // deregistered since the listing
		}
		listed[ci.Name] = true
		c := consumerLag(views, pos, now)
		c.ConsumerName = ci.Name
		c.RecordsLost = cks.Lost(name, ci.Name)
		if isForwarder(ci.Name) {
			c.Kind, c.State = kindForwarder, forwarderNotRunning
			c.TargetStream = strings.TrimPrefix(ci.Name, shards.ForwarderPrefix)
			if f, ok := running[ci.Name]; ok {
				withForwarder(&c, f)
			}
		} else {
			c.Kind, c.ConsumerARN = kindConsumer, s.consumerARN(ci)
		}
		g.Consumers = append(g.Consumers, c)
	}
	// A forwarder that has not committed yet has no checkpoint file; it
	// is listed from its own report.
	for cname, f := range running {
		if listed[cname] {
			continue
		}
		c := consumerLag(views, nil, now)
		c.ConsumerName, c.Kind = cname, kindForwarder
		withForwarder(&c, f)
		g.Consumers = append(g.Consumers, c)
	}
	sort.Slice(g.Consumers, func(i, j int) bool { return g.Consumers[i].ConsumerName < g.Consumers[j].ConsumerName })
	return g
}

// consumerLag computes a checkpoint owner's lag in every shard: the
// records stored after its position (a shard without a checkpoint counts
// from its start).
func consumerLag(views []shardView, pos map[string]uint64, now time.Time) GatewayConsumer {
	c := GatewayConsumer{Shards: make([]GatewayConsumerShard, 0, len(views))}
	var oldest time.Time
	for _, v := range views {
		cs := GatewayConsumerShard{ShardId: v.info.ID}
		ck, ok := pos[v.info.ID]
		if ok {
			cs.SequenceNumber = shards.FormatSeq(v.info.ID, ck)
		}
		next := v.th // first unprocessed record still stored
		if ok && ck+1 > next {
			next = ck + 1
		}
		if v.last >= next {
			// Sequence numbers have other shards' records in their gaps:
			// count the shard's own.
			n, _ := v.sh.RecordsIn(next, v.last+1)
			cs.LagRecords = int64(n)
			if t, ok := v.sh.ArrivalOf(next); n > 0 && ok && (oldest.IsZero() || t.Before(oldest)) {
				oldest = t
			}
		}
		c.LagRecords += cs.LagRecords
		c.Shards = append(c.Shards, cs)
	}
	if !oldest.IsZero() {
		c.LagSeconds = max(now.Sub(oldest).Seconds(), 0)
	}
	return c
}

// withForwarder replaces checkpoint-based lag with what the running
// forwarder reports: it counts records sent but not yet acknowledged,
// which the watermark cannot show.
func withForwarder(c *GatewayConsumer, f ForwarderStatus) {
	c.TargetStream, c.SinkKind, c.Filtered = f.TargetStream, f.Kind, f.Filtered
	c.LagRecords, c.LagBytes = f.Records, f.Bytes
	c.LagSeconds = f.OldestAge.Seconds()
	c.State, c.LastError = f.State, f.LastError
	c.Sent, c.Resent = f.Sent, f.Resent
	c.RecordsLost = max(c.RecordsLost, f.Lost)
}
