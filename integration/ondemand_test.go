package integration

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// TestOnDemandSplitsUnderLoadAndMergesBack: an on-demand stream of one
// shard limited to 100 records/s takes QoS 1 publishes from 32 devices,
// as fast as the limit lets their PUBACKs through (at 4 shards, 8 devices
// per shard still need only 10 publishes/s each to keep it over 80 %). The autoscaler splits
// it within a bounded time (up to max_shards: 4), and when the devices
// stop it merges the shards back to the one it started with. Every
// acknowledged message is stored, in order per device, with readers
// going parents before children (the dump's order), and the decisions
// are counted in /metrics.
func TestOnDemandSplitsUnderLoadAndMergesBack(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{Streams: []harness.Stream{{
		Name: "telemetry", Shards: 1, Rate: "{records_per_sec: 100, bytes_per_sec: 0}",
		Extra: "mode: on_demand\non_demand: {split_after: 2s, merge_after: 2s, cooldown: 1s, max_shards: 4}\n",
	}}})
	c, err := w.API()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var sum struct {
		StreamDescriptionSummary struct {
			StreamModeDetails struct{ StreamMode string }
			OpenShardCount    int
		}
	}
	if err := c.Kinesis(ctx, "DescribeStreamSummary", map[string]string{"StreamName": "telemetry"}, &sum); err != nil {
		t.Fatal(err)
	}
	if d := sum.StreamDescriptionSummary; d.StreamModeDetails.StreamMode != "ON_DEMAND" || d.OpenShardCount != 1 {
		t.Fatalf("configured on_demand stream described as %+v", d)
	}
	open := func() int {
		t.Helper()
		shards, err := c.ListShards(ctx, "telemetry")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range shards {
			if s.SequenceNumberRange.EndingSequenceNumber == "" {
				n++
			}
		}
		return n
	}
	waitOpen := func(want int, within time.Duration, what string) time.Duration {
		t.Helper()
		start := time.Now()
		for open() != want {
			if time.Since(start) > within {
				t.Fatalf("%s: %d open shards after %v, want %d", what, open(), within, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}

	fleet := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: 32})
	// split_after (2 s) per generation plus a pass: 1 → 2 → 4 shards.
	first := waitOpen(2, 10*time.Second, "first split under load")
	all := waitOpen(4, 20*time.Second, "split to max_shards under load")
	acked := fleet.Acked()
	fleet.WaitAcked(acked+300, 20*time.Second) // four shards keep taking writes
	stats := fleet.Stop()
	merged := waitOpen(1, 30*time.Second, "merge back after the load stopped")
	t.Logf("split in %v, at 4 shards after %v more, back to 1 shard %v after the load stopped; %d messages acked",
		first.Round(time.Millisecond), all.Round(time.Millisecond), merged.Round(time.Millisecond), stats.Acked)

	metrics := scrape(t, w.APIURL()+"/metrics")
	for _, action := range []string{"split", "merge"} {
		re := regexp.MustCompile(`weir_autoscale_decisions_total\{action="` + action + `",outcome="done",stream="telemetry"\} (\d+)`)
		m := re.FindStringSubmatch(metrics)
		if m == nil {
			t.Fatalf("/metrics has no %s decisions of telemetry", action)
		}
		if n, _ := strconv.Atoi(m[1]); n != 3 {
			t.Errorf("%s decisions = %d, want 3 (1 → 2 → 4 → 2 → 1)", action, n)
		}
	}
	w.Stop()
	harness.CheckLedger(t, fleet.Ledger(), harness.Dump(t, w.DataDir, "telemetry"))
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
