package api

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"

	"github.com/weir-gateway/weir/internal/jsonstr"
	"github.com/weir-gateway/weir/shards"
)

// getRecordsResult is a GetRecords answer. It writes its own JSON: the
// records are most of the API's traffic, and encoding them through
// reflection (one []byte -> base64 string per record) costs several times
// the direct append below.
type getRecordsResult struct {
	shard        string // the records' shard, for their sequence numbers
	records      []shards.Record
	next         *string
	millisBehind int64
	children     []childShard
	ext          bool // WeirGateway long-poll: add the MQTT fields
}

// recordJSON is one record on the wire. The last four members are weir
// extensions, sent only by WeirGateway_20261125.GetRecords.
type recordJSON struct {
	SequenceNumber              string         `json:"SequenceNumber"`
	ApproximateArrivalTimestamp *wireTime      `json:"ApproximateArrivalTimestamp"`
	Data                        []byte         `json:"Data"`
	PartitionKey                string         `json:"PartitionKey"`
	Topic                       string         `json:"Topic,omitempty"`
	ClientId                    string         `json:"ClientId,omitempty"`
	QoS                         *int           `json:"QoS,omitempty"`
	UserProperties              []userProperty `json:"UserProperties,omitempty"`
}

type userProperty struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type getRecordsOutput struct {
	Records            []recordJSON `json:"Records"`
	NextShardIterator  *string      `json:"NextShardIterator,omitempty"`
	MillisBehindLatest int64        `json:"MillisBehindLatest"`
	ChildShards        []childShard `json:"ChildShards,omitempty"`
}

// output is the reflective form, used for CBOR and by tests.
func (g *getRecordsResult) output() getRecordsOutput {
	out := getRecordsOutput{Records: make([]recordJSON, len(g.records)), NextShardIterator: g.next,
		MillisBehindLatest: g.millisBehind, ChildShards: g.children}
	for i := range g.records {
		r := &g.records[i]
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		out.Records[i] = recordJSON{SequenceNumber: shards.FormatSeq(g.shard, r.Seq), ApproximateArrivalTimestamp: msOf(r.Arrival),
			Data: data, PartitionKey: r.Key}
		if g.ext {
			q := int(r.QoS)
			out.Records[i].Topic, out.Records[i].ClientId, out.Records[i].QoS = r.Topic, r.ClientID, &q
			for _, p := range r.Props {
				out.Records[i].UserProperties = append(out.Records[i].UserProperties, userProperty{Key: p.Key, Value: p.Value})
			}
		}
	}
	return out
}

func (g *getRecordsResult) MarshalCBOR() ([]byte, error) { return cborEnc.Marshal(g.output()) }

func (g *getRecordsResult) MarshalJSON() ([]byte, error) { return g.appendJSON(nil), nil }

func (g *getRecordsResult) appendJSON(b []byte) []byte {
	size := 96 + len(g.children)*160
	for i := range g.records {
		size += 96 + base64.StdEncoding.EncodedLen(len(g.records[i].Data)) + len(g.records[i].Key)
	}
	b = growTo(b, size)
	b = append(b, `{"Records":[`...)
	for i := range g.records {
		b = g.appendRecord(b, i)
	}
	return g.appendTail(b)
}

// streamChunk is how much JSON writeJSON gathers before writing: enough to
// make each write worthwhile, small enough that a 10 MiB answer never sits
// whole in memory.
const streamChunk = 64 << 10

// writeJSON streams the answer to w in chunks, reusing buf; it returns buf
// for the caller to recycle. A write error means the client left; the rest
// is dropped.
func (g *getRecordsResult) writeJSON(w io.Writer, buf []byte) ([]byte, error) {
	buf = append(buf[:0], `{"Records":[`...)
	for i := range g.records {
		if len(buf) >= streamChunk {
			if _, err := w.Write(buf); err != nil {
				return buf, err
			}
			buf = buf[:0]
		}
		buf = g.appendRecord(buf, i)
	}
	buf = g.appendTail(buf)
	_, err := w.Write(buf)
	return buf, err
}

func (g *getRecordsResult) appendRecord(b []byte, i int) []byte {
	r := &g.records[i]
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"SequenceNumber":"`...)
	b = shards.AppendSeq(b, g.shard, r.Seq)
	b = append(b, `","ApproximateArrivalTimestamp":`...)
	b = wireTime(r.Arrival).appendJSON(b)
	b = append(b, `,"Data":"`...)
	b = base64.StdEncoding.AppendEncode(b, r.Data)
	b = append(b, `","PartitionKey":`...)
	b = jsonstr.AppendQuoted(b, r.Key, false)
	if g.ext {
		if r.Topic != "" {
			b = append(b, `,"Topic":`...)
			b = jsonstr.AppendQuoted(b, r.Topic, false)
		}
		if r.ClientID != "" {
			b = append(b, `,"ClientId":`...)
			b = jsonstr.AppendQuoted(b, r.ClientID, false)
		}
		b = append(b, `,"QoS":`...)
		b = strconv.AppendUint(b, uint64(r.QoS), 10)
		if len(r.Props) > 0 {
			b = append(b, `,"UserProperties":[`...)
			for j, p := range r.Props {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"Key":`...)
				b = jsonstr.AppendQuoted(b, p.Key, false)
				b = append(b, `,"Value":`...)
				b = jsonstr.AppendQuoted(b, p.Value, false)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
	}
	return append(b, '}')
}

func (g *getRecordsResult) appendTail(b []byte) []byte {
	b = append(b, ']')
	if g.next != nil {
		b = append(b, `,"NextShardIterator":"`...)
		b = append(b, *g.next...) // base64url: nothing to escape
		b = append(b, '"')
	}
	b = append(b, `,"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, g.millisBehind, 10)
	if g.children != nil {
		b = append(b, `,"ChildShards":`...)
		cb, _ := json.Marshal(g.children)
		b = append(b, cb...)
	}
	return append(b, '}')
}

func growTo(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}
