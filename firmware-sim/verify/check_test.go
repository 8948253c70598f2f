package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

func entries(dev string, seqs ...uint64) []ledger.Entry {
	var out []ledger.Entry
	for _, s := range seqs {
		out = append(out, ledger.Entry{Device: dev, Seq: s, Key: dev, Ack: time.Unix(1, 0)})
	}
	return out
}

func occ(dev string, seqs ...uint64) []Occurrence {
	var out []Occurrence
	for _, s := range seqs {
		out = append(out, Occurrence{Device: dev, Seq: s, PartitionKey: dev, TS: 1000})
	}
	return out
}

func TestCheckDetectsMissingDuplicatesReorders(t *testing.T) {
	cases := []struct {
		name                     string
		ledger                   []uint64
		stream                   []uint64
		missing, dups            []uint64
		reorders                 []Reorder
		extra                    int
		failed, failedStrictDups bool
	}{
		{name: "perfect", ledger: []uint64{1, 2, 3}, stream: []uint64{1, 2, 3}},
		{name: "missing middle", ledger: []uint64{1, 2, 3, 4}, stream: []uint64{1, 4}, missing: []uint64{2, 3}, failed: true, failedStrictDups: true},
		{name: "resent after lost ack", ledger: []uint64{1, 2, 3, 4}, stream: []uint64{1, 2, 3, 2, 3, 4}, dups: []uint64{2, 3}, failedStrictDups: true},
		{name: "swapped", ledger: []uint64{1, 2, 3}, stream: []uint64{1, 3, 2}, reorders: []Reorder{{Seq: 2, After: 3}}, failed: true, failedStrictDups: true},
		{name: "unacked extras are fine", ledger: []uint64{1, 3}, stream: []uint64{1, 2, 3, 4}, extra: 2},
		{name: "gap from a dropped message is fine", ledger: []uint64{1, 2, 5}, stream: []uint64{1, 2, 5}},
		{name: "reordered extra still counts", ledger: []uint64{1, 2}, stream: []uint64{2, 9, 1}, reorders: []Reorder{{Seq: 1, After: 9}}, extra: 1, failed: true, failedStrictDups: true},
		{name: "everything missing", ledger: []uint64{1, 2}, stream: nil, missing: []uint64{1, 2}, failed: true, failedStrictDups: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(entries("d1", tc.ledger...), occ("d1", tc.stream...), 0, Options{})
			var d DeviceReport
			if len(r.Problems) > 0 {
				d = r.Problems[0]
			}
			if !slices.Equal(d.Missing, tc.missing) || !slices.Equal(d.Duplicated, tc.dups) || !slices.Equal(d.OutOfOrder, tc.reorders) {
				t.Fatalf("got missing %v dups %v reorders %v", d.Missing, d.Duplicated, d.OutOfOrder)
			}
			if r.Extra != tc.extra {
				t.Fatalf("extra %d, want %d", r.Extra, tc.extra)
			}
			if r.Failed(false, false) != tc.failed || r.Failed(true, false) != tc.failedStrictDups {
				t.Fatalf("failed %v/%v, want %v/%v", r.Failed(false, false), r.Failed(true, false), tc.failed, tc.failedStrictDups)
			}
			if r.Expected != len(tc.ledger) || r.Found != len(tc.ledger)-len(tc.missing) {
				t.Fatalf("expected/found %d/%d", r.Expected, r.Found)
			}
		})
	}
}

func TestCheckManyDevicesProbesKeysAndSince(t *testing.T) {
	led := append(entries("a", 1, 2, 3), entries("b", 1, 2)...)
	led = append(led, ledger.Entry{Device: "b", Seq: 3, Key: "b", Probe: "unrouted"}, ledger.Entry{Device: "b", Seq: 4, Key: "b", Probe: "oversize"})
	stream := []Occurrence{
		{Device: "a", Seq: 1, PartitionKey: "a", TS: 5000},
		{Device: "b", Seq: 1, PartitionKey: "b", TS: 5000},
		{Device: "a", Seq: 2, PartitionKey: "wrong", TS: 5000},
		{Device: "b", Seq: 2, PartitionKey: "b", TS: 5000},
		{Device: "b", Seq: 4, PartitionKey: "b", TS: 5000}, // the oversize probe was stored: informational
		{Device: "a", Seq: 3, PartitionKey: "a", TS: 5000},
		{Device: "zz", Seq: 1, TS: 5000},
		{Device: "a", Seq: 1, PartitionKey: "a", TS: 10}, // an older run: skipped with Since
	}
	r := Check(led, stream, 2, Options{Since: time.UnixMilli(1000)})
	if r.Missing != 0 || r.OutOfOrder != 0 || r.Duplicated != 0 || r.Failed(true, false) {
		t.Fatalf("report %+v", r)
	}
	if r.Expected != 5 || r.ProbesFound != 1 || r.KeyMismatch != 1 || r.UnknownDevice != 1 || r.Skipped != 1 || r.Foreign != 2 || r.Records != 10 {
		t.Fatalf("report %+v", r)
	}
	if !r.Failed(false, true) {
		t.Fatal("key mismatch should fail in strict-keys mode")
	}
	// Without Since the old run's seq 1 looks like a duplicate.
	if r := Check(led, stream, 0, Options{}); r.Duplicated != 1 {
		t.Fatalf("without since: %+v", r)
	}
}

func TestDecodeEnvelopes(t *testing.T) {
	g := payload.NewGenerator("dev-7", 1, 7, payload.JSON, false)
	raw := g.Next(42, 1700000000000, 0)
	bin := payload.NewGenerator("cam-1", 1, 1, payload.Binary, false).Next(9, 1, 1000)
	b64 := base64.StdEncoding.EncodeToString(raw)
	envJSON, _ := json.Marshal(map[string]any{"id": "gw:telemetry:shardId-000000000000:17", "topic": "devices/dev-7/telemetry", "client_id": "dev-7", "data": b64})
	envBin, _ := json.Marshal(map[string]any{"id": "x", "data": base64.StdEncoding.EncodeToString(bin)})
	envInline := []byte(`{"id":"x","payload":` + string(raw) + `}`)
	cases := []struct {
		name string
		data []byte
		env  Envelope
		dev  string
		seq  uint64
		err  bool
	}{
		{"raw json", raw, EnvelopeRaw, "dev-7", 42, false},
		{"raw binary", bin, EnvelopeAuto, "cam-1", 9, false},
		{"json envelope", envJSON, EnvelopeJSON, "dev-7", 42, false},
		{"json envelope auto", envJSON, EnvelopeAuto, "dev-7", 42, false},
		{"binary in envelope", envBin, EnvelopeAuto, "cam-1", 9, false},
		{"inline payload", envInline, EnvelopeJSON, "dev-7", 42, false},
		{"envelope under raw", envJSON, EnvelopeRaw, "", 0, true},
		{"foreign", []byte("hello"), EnvelopeAuto, "", 0, true},
		{"foreign json", []byte(`{"temp":1}`), EnvelopeAuto, "", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := Decode(tc.data, tc.env)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			if !tc.err && (id.Device != tc.dev || id.Seq != tc.seq) {
				t.Fatalf("got %+v", id)
			}
		})
	}
	if _, err := ParseEnvelope("xml"); err == nil {
		t.Fatal("xml envelope accepted")
	}
}

func TestRangesAndText(t *testing.T) {
	if got := Ranges([]uint64{1, 2, 3, 5, 7, 8}, 10); got != "1-3,5,7-8" {
		t.Fatalf("ranges %q", got)
	}
	if got := Ranges([]uint64{2, 2, 3}, 10); got != "2-3" {
		t.Fatalf("ranges with repeats %q", got)
	}
	if got := Ranges([]uint64{1, 3, 5, 7}, 2); got != "1,3,…" {
		t.Fatalf("limited %q", got)
	}
	r := Check(entries("d", 1, 2, 3, 4), occ("d", 1, 4, 3, 3), 0, Options{})
	var buf bytes.Buffer
	if err := r.WriteText(&buf, 10); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"missing 1", "out-of-order 1", "d ", "3 after 4"} {
		if !strings.Contains(buf.String(), w) {
			t.Fatalf("text lacks %q:\n%s", w, buf.String())
		}
	}
}
