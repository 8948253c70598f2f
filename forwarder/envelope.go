package forwarder

import (
	"encoding/json"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// TimeFormat is the envelope's ts layout: RFC 3339 in UTC with
// milliseconds, as `weir dump` and `weir read` print it.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Envelope is the JSON document sent upstream with `envelope: json`. ID is
// stable across resends (gateway/stream/shard/seq) so consumers can drop
// the duplicates at-least-once delivery brings.
type Envelope struct {
	ID       string                `json:"id"`
	Gateway  string                `json:"gateway"`
	Stream   string                `json:"stream"`
	Shard    string                `json:"shard"`
	Seq      string                `json:"seq"`
	Key      string                `json:"key"`
	Topic    string                `json:"topic"`
	ClientID string                `json:"client_id"`
	TS       string                `json:"ts"`
	QoS      byte                  `json:"qos"`
	Props    []shards.UserProperty `json:"props"`
	Data     []byte                `json:"data"` // base64 in JSON
}

// envelopeFunc turns a local record into the bytes sent upstream.
type envelopeFunc func(shard string, r *shards.Record) ([]byte, error)

func rawEnvelope(_ string, r *shards.Record) ([]byte, error) { return r.Data, nil }

func jsonEnvelope(gateway, stream string) envelopeFunc {
	return func(shard string, r *shards.Record) ([]byte, error) {
		return json.Marshal(NewEnvelope(gateway, stream, shard, r))
	}
}

// NewEnvelope builds the JSON envelope of record r of a local shard.
func NewEnvelope(gateway, stream, shard string, r *shards.Record) Envelope {
	seq := shards.FormatIndex(r.Seq)
	props := r.Props
	if props == nil {
		props = []shards.UserProperty{} // always an array, so consumers see one schema
	}
	return Envelope{
		ID:      gateway + "/" + stream + "/" + shard + "/" + seq,
		Gateway: gateway, Stream: stream, Shard: shard, Seq: seq,
		Key: r.Key, Topic: r.Topic, ClientID: r.ClientID,
		TS:  time.UnixMilli(r.Arrival).UTC().Format(TimeFormat),
		QoS: r.QoS, Props: props, Data: r.Data,
	}
}
