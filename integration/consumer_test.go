package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/weir-gateway/weir/integration/harness"
)

// TestCheckpointResumeAcrossKill9 reads a stream with `weir read
// --consumer` in pieces, with a kill -9 of the gateway between pieces: the
// checkpoints are the gateway's, so each run continues exactly after what
// the previous one printed, with no gap and no duplicate.
func TestCheckpointResumeAcrossKill9(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{Streams: []harness.Stream{{Name: "telemetry", Shards: 2}}})
	c := connect(t, w.MQTTURL(), "producer")
	const total = 60
	for i := range total {
		dev := fmt.Sprintf("dev-%d", i%4)
		publish(t, c, "devices/"+dev+"/telemetry", []byte(fmt.Sprintf("%s/%03d", dev, i)))
	}
	c.Disconnect(50)

	seen := map[string]int{}
	var order []string
	read := func(limit int) int {
		t.Helper()
		args := []string{"read", "telemetry", "--api", w.APIURL(), "--consumer", "dashboard"}
		if limit > 0 {
			args = append(args, "--limit", fmt.Sprint(limit))
		}
		out, errOut, code := harness.RunWeir(t, "", args...)
		if code != 0 {
			t.Fatalf("weir read exit %d: %s", code, errOut)
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var rec struct {
				Data []byte `json:"data"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("bad line %q: %v", line, err)
			}
			seen[string(rec.Data)]++
			order = append(order, string(rec.Data))
			n++
		}
		return n
	}
	if n := read(25); n != 25 {
		t.Fatalf("first read printed %d records, want 25", n)
	}
	w.Kill9()
	w.Restart()
	if n := read(20); n != 20 {
		t.Fatalf("read after kill -9 printed %d, want 20", n)
	}
	w.Kill9()
	w.Restart()
	if n := read(0); n != total-45 {
		t.Fatalf("last read printed %d, want the remaining %d", n, total-45)
	}
	if n := read(0); n != 0 {
		t.Fatalf("a read after everything was consumed printed %d records again", n)
	}
	for i := range total {
		key := fmt.Sprintf("dev-%d/%03d", i%4, i)
		if seen[key] != 1 {
			t.Fatalf("record %s printed %d times across restarts (gap or duplicate)", key, seen[key])
		}
	}
	// Per device, records came out in publish order.
	last := map[string]string{}
	for _, d := range order {
		dev := d[:strings.IndexByte(d, '/')]
		if d <= last[dev] {
			t.Fatalf("%s printed after %s", d, last[dev])
		}
		last[dev] = d
	}
}
