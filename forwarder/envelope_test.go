package forwarder

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

func TestEnvelopeJSON(t *testing.T) {
	arrival := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	r := &shards.Record{Seq: 42, Key: "dev-7", Data: []byte{0, 1, 0xff, 'h', 'i'}, Arrival: arrival.UnixMilli(),
		Topic: "devices/dev-7/telemetry", ClientID: "dev-7", QoS: 1,
		Props: []shards.UserProperty{{Key: "fw", Value: "1.2"}}}
	b, err := jsonEnvelope("gw-1", "telemetry")("shardId-000000000003", r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"client_id", "data", "gateway", "id", "key", "props", "qos", "seq", "shard", "stream", "topic", "ts"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("fields %v, want %v", keys, want)
	}
	checks := map[string]any{
		"id": "gw-1/telemetry/shardId-000000000003/42", "gateway": "gw-1", "stream": "telemetry",
		"shard": "shardId-000000000003", "seq": "42", "key": "dev-7", "topic": "devices/dev-7/telemetry",
		"client_id": "dev-7", "ts": "2026-03-04T05:06:07.891Z", "qos": 1.0, "data": "AAH/aGk=",
	}
	for k, v := range checks {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	props, _ := json.Marshal(m["props"])
	if string(props) != `[{"key":"fw","value":"1.2"}]` {
		t.Errorf("props = %s", props)
	}
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil || string(env.Data) != string(r.Data) {
		t.Fatalf("round trip: %v %q", err, env.Data)
	}

	// No properties: still an array, so consumers see one schema.
	b, _ = jsonEnvelope("gw-1", "telemetry")("s", &shards.Record{Seq: 1, Key: "k"})
	if err := json.Unmarshal(b, &m); err != nil || m["props"] == nil {
		t.Fatalf("props missing: %s", b)
	}
	// Raw sends the payload itself.
	if raw, _ := rawEnvelope("s", r); string(raw) != string(r.Data) {
		t.Fatal("raw envelope changed the data")
	}
}
