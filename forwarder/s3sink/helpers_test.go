package s3sink_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/payload"
	"github.com/weir-gateway/weir/shards"
)

// baseArrival is 2026-03-04T05:06:07.089Z, so rendered prefixes are
// known.
var baseArrival = time.Date(2026, 3, 4, 5, 6, 7, 89e6, time.UTC).UnixMilli()

// telemetry returns n records as a shard holds them: firmware-sim JSON
// payloads of devices keys apart, ascending seqs from first, arrivals 10ms
// apart, and user properties on every third record.
func telemetry(n, keys int, first uint64) []*shards.Record {
	gens := make([]*payload.Generator, keys)
	for i := range gens {
		gens[i] = payload.NewGenerator(fmt.Sprintf("dev-%03d", i), 7, uint64(i), payload.JSON, i%2 == 0)
	}
	recs := make([]*shards.Record, n)
	for i := range recs {
		k := i % keys
		ts := baseArrival + int64(i)*10
		r := &shards.Record{Seq: first + uint64(i)*3, Key: gens[k].Device(), Arrival: ts,
			Topic: "fleet/" + gens[k].Device() + "/telemetry", ClientID: gens[k].Device(), QoS: byte(i % 2),
			Data: gens[k].Next(uint64(i), ts, 0)}
		if i%3 == 0 {
			r.Props = []shards.UserProperty{{Key: "fw", Value: "1.4.2"}, {Key: "unit", Value: "°C <&>"}}
		}
		recs[i] = r
	}
	return recs
}

// sameRecords fails t unless got holds exactly want's records in order.
func sameRecords(t testing.TB, got, want []*shards.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Key != w.Key || g.Arrival != w.Arrival || g.Topic != w.Topic || g.ClientID != w.ClientID ||
			g.QoS != w.QoS || !bytes.Equal(g.Data, w.Data) || fmt.Sprint(g.Props) != fmt.Sprint(w.Props) {
			t.Fatalf("record %d:\ngot  %+v\nwant %+v", i, g, w)
		}
	}
}
