package forwarder

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/weir-gateway/weir/integration/kinesalite"
)

// aggCases are aggregates to round-trip: binary data, empty data, a
// unicode key, many records, a large record.
func aggCases() []struct {
	key   string
	datas [][]byte
} {
	many := make([][]byte, 300)
	for i := range many {
		many[i] = []byte(fmt.Sprintf(`{"device":"d-7","n":%d}`, i))
	}
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	return []struct {
		key   string
		datas [][]byte
	}{
		{"dev-1", [][]byte{[]byte("a"), []byte("bc")}},
		{"ключ-ü-🔑", [][]byte{bin, {}, []byte("z")}},
		{"many", many},
		{"big", [][]byte{bytes.Repeat([]byte("q"), 200_000), bytes.Repeat([]byte("r"), 300)}},
	}
}

func TestKPLRoundTrip(t *testing.T) {
	for _, c := range aggCases() {
		agg := EncodeAggregate(c.key, c.datas)
		if len(agg) != kplAggregateSize(c.key, c.datas) {
			t.Fatalf("%s: size %d, predicted %d", c.key, len(agg), kplAggregateSize(c.key, c.datas))
		}
		if !IsAggregate(agg) {
			t.Fatalf("%s: no magic", c.key)
		}
		recs, err := DecodeAggregate(agg, "outer")
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		if len(recs) != len(c.datas) {
			t.Fatalf("%s: %d records, want %d", c.key, len(recs), len(c.datas))
		}
		for i, r := range recs {
			if r.PartitionKey != c.key || !bytes.Equal(r.Data, c.datas[i]) {
				t.Fatalf("%s: record %d = %q/%q", c.key, i, r.PartitionKey, r.Data)
			}
		}
	}
}

func TestKPLDecodeRejects(t *testing.T) {
	good := EncodeAggregate("k", [][]byte{[]byte("hello"), []byte("world")})
	cases := map[string][]byte{
		"bad_md5":        append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1),
		"short":          kplMagic,
		"flipped_byte":   func() []byte { b := bytes.Clone(good); b[10] ^= 0x40; return b }(),
		"key_index_oob":  withMD5([]byte{tagKeyTable, 1, 'k', tagRecords, 5, tagKeyIndex, 3, tagData, 1, 'x'}),
		"missing_data":   withMD5([]byte{tagKeyTable, 1, 'k', tagRecords, 2, tagKeyIndex, 0}),
		"truncated_len":  withMD5([]byte{tagKeyTable, 9, 'k'}),
		"bad_wire_type":  withMD5([]byte{tagKeyTable | 7, 0}),
		"field_number_0": withMD5([]byte{0x02, 0}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeAggregate(b, "k"); !errors.Is(err, ErrBadAggregate) {
				t.Fatalf("err = %v, want ErrBadAggregate", err)
			}
		})
	}
	plain, err := DecodeAggregate([]byte("not aggregated"), "pk")
	if err != nil || len(plain) != 1 || plain[0].PartitionKey != "pk" || string(plain[0].Data) != "not aggregated" {
		t.Fatalf("plain record: %v %v", plain, err)
	}
}

func withMD5(pb []byte) []byte {
	return append(append(append([]byte{}, kplMagic...), pb...), md5sum(pb)...)
}

func md5sum(b []byte) []byte {
	s := md5.Sum(b)
	return s[:]
}

// deaggScript de-aggregates the records on stdin with aws-kinesis-agg,
// checksums verified, and prints what it found.
const deaggScript = `
const agg = require('aws-kinesis-agg');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const out = [];
  for (const r of JSON.parse(input)) {
    agg.deaggregateSync({partitionKey: r.key, data: r.data, sequenceNumber: '1'}, true, (err, recs) => {
      if (err) { console.error('deaggregate: ' + err); process.exit(2); }
      out.push(recs.map(u => ({key: u.partitionKey, data: u.data})));
    });
  }
  process.stdout.write(JSON.stringify(out));
});
`

// aggScript aggregates records with aws-kinesis-agg, for the other
// direction.
const aggScript = `
const agg = require('aws-kinesis-agg');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const recs = JSON.parse(input).map(r => ({partitionKey: r.key, data: Buffer.from(r.data, 'base64')}));
  const out = [];
  agg.aggregate(recs, (enc, cb) => { out.push({key: enc.partitionKey, data: enc.data.toString('base64')}); cb(); },
    () => process.stdout.write(JSON.stringify(out)),
    (err) => { console.error('aggregate: ' + err); process.exit(2); });
});
`

type nodeRec struct {
	Key  string `json:"key"`
	Data string `json:"data"` // base64
}

// TestKPLAgainstNpmDeaggregator checks our aggregates with the
// de-aggregator AWS publishes for Lambda (npm aws-kinesis-agg 4.2.8).
func TestKPLAgainstNpmDeaggregator(t *testing.T) {
	cases := aggCases()
	var in []nodeRec
	for _, c := range cases {
		in = append(in, nodeRec{c.key, base64.StdEncoding.EncodeToString(EncodeAggregate(c.key, c.datas))})
	}
	in = append(in, nodeRec{"plain", base64.StdEncoding.EncodeToString([]byte("a plain record"))})
	stdin, _ := json.Marshal(in)
	var out [][]nodeRec
	if err := json.Unmarshal(kinesalite.Node(t, deaggScript, stdin), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(cases)+1 {
		t.Fatalf("node returned %d groups, want %d", len(out), len(cases)+1)
	}
	for i, c := range cases {
		if len(out[i]) != len(c.datas) {
			t.Fatalf("%s: node found %d records, want %d", c.key, len(out[i]), len(c.datas))
		}
		for j, u := range out[i] {
			d, _ := base64.StdEncoding.DecodeString(u.Data)
			if u.Key != c.key || !bytes.Equal(d, c.datas[j]) {
				t.Fatalf("%s: node record %d = %q/%q", c.key, j, u.Key, d)
			}
		}
	}
	if p := out[len(cases)]; len(p) != 1 || p[0].Key != "plain" {
		t.Fatalf("plain record through node: %v", p)
	}

	// And the other way: what the npm aggregator builds, we decode.
	var recs []nodeRec
	for i := range 50 {
		recs = append(recs, nodeRec{fmt.Sprintf("k%d", i%3), base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("rec-%d", i)))})
	}
	stdin, _ = json.Marshal(recs)
	var aggs []nodeRec
	if err := json.Unmarshal(kinesalite.Node(t, aggScript, stdin), &aggs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range aggs {
		b, _ := base64.StdEncoding.DecodeString(a.Data)
		us, err := DecodeAggregate(b, a.Key)
		if err != nil {
			t.Fatalf("decode npm aggregate: %v", err)
		}
		for _, u := range us {
			got = append(got, u.PartitionKey+"="+string(u.Data))
		}
	}
	if len(got) != 50 {
		t.Fatalf("decoded %d of 50 records from npm aggregates", len(got))
	}
	for i, g := range got {
		if want := fmt.Sprintf("k%d=rec-%d", i%3, i); g != want {
			t.Fatalf("record %d = %s, want %s", i, g, want)
		}
	}
}

func FuzzDecodeAggregate(f *testing.F) {
	for _, c := range aggCases()[:2] {
		f.Add(EncodeAggregate(c.key, c.datas))
	}
	f.Add(withMD5([]byte{tagKeyTable, 1, 'k', 2<<3 | wireBytes, 1, '5', tagRecords, 7, tagKeyIndex, 0, 2 << 3, 0, tagData, 1, 'x'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeAggregate(b, "outer")
		if err != nil {
			return
		}
		if !IsAggregate(b) {
			return
		}
		// Whatever decodes re-encodes to the same records when all share
		// one key (the only kind we write).
		if len(recs) == 0 {
			return
		}
		datas := make([][]byte, len(recs))
		for i, r := range recs {
			if r.PartitionKey != recs[0].PartitionKey {
				return
			}
			datas[i] = r.Data
		}
		again, err := DecodeAggregate(EncodeAggregate(recs[0].PartitionKey, datas), "x")
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-encode: %v, %d vs %d", err, len(again), len(recs))
		}
	})
}
