package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"

	simledger "github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// recorder stands in for the test handed to CheckLedger, so the checker's
// own failures can be asserted.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Errorf(f string, a ...any) { r.errors = append(r.errors, fmt.Sprintf(f, a...)) }

func rec(shard string, seq uint64, dev string, devSeq uint64) Line {
	g := payload.NewGenerator(dev, 1, 1, payload.JSON, false)
	return Line{Shard: shard, Seq: seq, Key: dev, Data: g.Next(devSeq, 0, 0)}
}

func entries(dev string, seqs ...uint64) []simledger.Entry {
	var es []simledger.Entry
	for _, s := range seqs {
		es = append(es, simledger.Entry{Device: dev, Seq: s, Key: dev, Ack: time.Unix(0, 0)})
	}
	return es
}

func TestCheckLedger(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ledger  []simledger.Entry
		dump    []Line
		fail    string // substring of the expected error; "" = passes
		check   func(Report) bool
		explain string
	}{
		{
			name:   "all stored in order",
			ledger: entries("a", 1, 2, 3),
			dump:   []Line{rec("s0", 1, "a", 1), rec("s0", 2, "a", 2), rec("s0", 3, "a", 3)},
			check:  func(r Report) bool { return r.Acked == 3 && r.Stored == 3 && r.Missing == 0 },
		},
		{
			name:    "resend after a lost PUBACK is a counted duplicate",
			ledger:  entries("a", 1, 2, 3),
			dump:    []Line{rec("s0", 1, "a", 1), rec("s0", 2, "a", 2), rec("s0", 3, "a", 2), rec("s0", 4, "a", 3)},
			check:   func(r Report) bool { return r.Duplicates == 1 },
			explain: "duplicates = 1",
		},
		{
			name:    "stored but never acked is allowed",
			ledger:  entries("a", 1),
			dump:    []Line{rec("s0", 1, "a", 1), rec("s0", 2, "a", 2)},
			check:   func(r Report) bool { return r.UnackedStored == 1 },
			explain: "unacked_stored = 1",
		},
		{
			name:   "acked but missing",
			ledger: entries("a", 1, 2, 3),
			dump:   []Line{rec("s0", 1, "a", 1), rec("s0", 2, "a", 3)},
			fail:   "missing: a seq 2",
		},
		{
			name:   "first occurrences out of order",
			ledger: entries("a", 1, 2),
			dump:   []Line{rec("s0", 1, "a", 2), rec("s0", 2, "a", 1)},
			fail:   "out of order",
		},
		{
			name:   "a late duplicate does not hide reordering of first copies",
			ledger: entries("a", 1, 2),
			dump:   []Line{rec("s0", 1, "a", 2), rec("s0", 2, "a", 1), rec("s0", 3, "a", 2)},
			fail:   "out of order",
		},
		{
			name:   "wrong partition key",
			ledger: entries("a", 1),
			dump:   []Line{{Shard: "s0", Seq: 1, Key: "b", Data: rec("s0", 1, "a", 1).Data}},
			fail:   "wrong key",
		},
		{
			name:   "shard sequence numbers must increase",
			ledger: entries("a", 1, 2),
			dump:   []Line{rec("s0", 5, "a", 1), rec("s0", 5, "a", 2)},
			fail:   "seq 5 follows 5",
		},
		{
			name:    "devices in different shards are independent",
			ledger:  append(entries("a", 1, 2), entries("b", 1, 2)...),
			dump:    []Line{rec("s0", 1, "a", 1), rec("s0", 2, "a", 2), rec("s1", 1, "b", 1), rec("s1", 2, "b", 2), {Shard: "s1", Seq: 3, Key: "x", Data: []byte("not ours")}},
			check:   func(r Report) bool { return r.Devices == 2 && r.Foreign == 1 },
			explain: "devices = 2, foreign = 1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			rep := CheckLedger(r, &Ledger{Entries: tc.ledger}, tc.dump)
			joined := strings.Join(r.errors, "\n")
			switch {
			case tc.fail == "" && len(r.errors) > 0:
				t.Errorf("want no failure, got:\n%s", joined)
			case tc.fail != "" && !strings.Contains(joined, tc.fail):
				t.Errorf("want a failure mentioning %q, got %q", tc.fail, joined)
			}
			if tc.check != nil && !tc.check(rep) {
				t.Errorf("report %s: want %s", rep, tc.explain)
			}
		})
	}
}

func TestRenderConfigDefaults(t *testing.T) {
	w := &Weir{DataDir: "/d", MQTTAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}
	got, err := renderConfig(Opts{MQTT: "max_inflight: 16", Streams: []Stream{{Name: "t", Extra: "retention: 1h"}}}, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  max_inflight: 16\n", "fsync: always", "    retention: 1h\n", "rate: {records_per_sec: 0, bytes_per_sec: 0}",
		`filter: "devices/+/telemetry"`, "stream: t\n", `partition_key: "{topic.1}"`} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	got, err = renderConfig(Opts{YAML: "data_dir: {{.DataDir}}\nmqtt: {listen: {{.MQTT}}}\napi: {listen: {{.API}}}\n"}, w)
	if err != nil || got != "data_dir: /d\nmqtt: {listen: 127.0.0.1:1}\napi: {listen: 127.0.0.1:2}\n" {
		t.Errorf("template: %q, %v", got, err)
	}
}
