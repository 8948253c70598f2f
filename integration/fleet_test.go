package integration

import (
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
	"github.com/weir-gateway/weir/integration/harness"
)

// simRoutes covers the topics of the firmware-sim scenarios.
var simRoutes = []harness.Route{
	{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"},
	{Filter: "devices/+/uploads", Stream: "telemetry", PartitionKey: "{topic.1}"},
}

// TestSmokeScenario plays firmware-sim's smoke scenario (JSON, CBOR and
// binary payloads, QoS 1 and 2) against weir: every message is acked and
// stored, in order.
func TestSmokeScenario(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{Routes: simRoutes})
	cfg := harness.Scenario(t, "smoke")
	cfg.Broker = w.MQTTURL()
	l, sum := harness.RunSimFleet(t, cfg)
	w.Stop()
	if sum.Failed != 0 || sum.Acked != sum.Generated || sum.Acked == 0 {
		t.Errorf("fleet: generated %d, acked %d, failed %d (%v)", sum.Generated, sum.Acked, sum.Failed, sum.FailedBy)
	}
	harness.CheckLedger(t, l, harness.Dump(t, w.DataDir, "telemetry"))
}

// TestReconnectStormAndCrash: a firmware-sim fleet with its own reconnect
// logic rides through a herd reconnect, a jittered one, and a kill -9 of
// the gateway; nothing acknowledged is lost or reordered, and probes to
// unrouted topics are delivered but not stored.
func TestReconnectStormAndCrash(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{})
	cfg := fleet.Config{
		Broker:               w.MQTTURL(),
		Duration:             8 * time.Second,
		Ramp:                 time.Second,
		Seed:                 11,
		CleanSession:         true,
		MaxReconnectInterval: time.Second,
		Groups: []fleet.Group{{
			Name: "sensor", Count: 200, Rate: 10, QoS: 1,
			Behaviour: fleet.Behaviour{Unrouted: &fleet.Unrouted{Probability: 0.01}},
		}},
		Events: []fleet.Event{
			{At: 2 * time.Second, Kind: "storm"},
			{At: 4 * time.Second, Kind: "storm", Jitter: time.Second},
		},
	}
	run := harness.StartSimFleet(t, cfg)
	time.Sleep(5500 * time.Millisecond)
	w.Kill9()
	w.Restart()
	l, sum := run.Wait()
	w.Stop()
	t.Logf("fleet: %+v", sum)
	if sum.NeverConnected != 0 {
		t.Errorf("%d devices never connected", sum.NeverConnected)
	}
	r := harness.CheckLedger(t, l, harness.Dump(t, w.DataDir, "telemetry"))
	if r.Devices != 200 {
		t.Errorf("%d devices have acked messages, want 200", r.Devices)
	}
}
