package integration

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// TestSIGHUPReloadUnderLoad: 20 devices publish QoS 1 as fast as acks
// allow while the configuration file gains a stream and a route (and
// asks for a new MQTT port, which needs a restart) and the gateway gets
// SIGHUP. Nothing acknowledged is lost, no device is disconnected (each
// connected exactly once and never had to resend), the listener stays
// where it was, and publishes to the new route land in the new stream.
func TestSIGHUPReloadUnderLoad(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{})
	const devices = 20
	tel := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: devices, Prefix: "tel"})
	tel.WaitAcked(500, 20*time.Second)

	old, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	newPort := strconv.Itoa(harness.FreePort(t))
	next := string(old)
	for _, r := range [][2]string{
		{"streams:\n", "streams:\n  - name: events\n    shards: 2\n    rate: {records_per_sec: 0, bytes_per_sec: 0}\n"},
		{"routes:\n", "routes:\n  - filter: devices/+/events\n    stream: events\n    partition_key: \"{topic.1}\"\n"},
		{"listen: " + w.MQTTAddr + "\n", "listen: 127.0.0.1:" + newPort + "\n"},
	} {
		if !strings.Contains(next, r[0]) {
			t.Fatalf("rendered config has no %q:\n%s", r[0], next)
		}
		next = strings.Replace(next, r[0], r[1], 1)
	}
	if err := os.WriteFile(w.ConfigPath, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tel.Acked()
	if err := syscall.Kill(w.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.Log(), `"message":"config reloaded"`) {
		if time.Now().After(deadline) || !w.Running() {
			t.Fatalf("no reload within 10s (running %v)", w.Running())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ev := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: 5, Prefix: "ev", Topic: "devices/{id}/events"})
	ev.WaitAcked(200, 20*time.Second)
	tel.WaitAcked(before+1000, 20*time.Second)
	telStats, evStats := tel.Stop(), ev.Stop()
	w.Stop()

	log := w.Log()
	var listenLine string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"key":"mqtt.listen"`) {
			listenLine = l
		}
	}
	if !strings.Contains(listenLine, "needs a restart") || !strings.Contains(listenLine, `"at":"`+w.ConfigPath+`:`) ||
		!strings.Contains(listenLine, `"old":"`+w.MQTTAddr+`"`) {
		t.Errorf("mqtt.listen is not reported as restart-only with its file:line: %q", listenLine)
	}
	harness.CheckLedger(t, tel.Ledger(), harness.Dump(t, w.DataDir, "telemetry"))
	harness.CheckLedger(t, ev.Ledger(), harness.Dump(t, w.DataDir, "events"))
	if telStats.Connects != devices || telStats.Resends != 0 || evStats.Connects != 5 {
		t.Errorf("devices were disconnected: telemetry fleet %+v (want %d connects, 0 resends), events fleet %+v",
			telStats, devices, evStats)
	}
	t.Logf("acked %d telemetry (%d after SIGHUP) and %d events", telStats.Acked, telStats.Acked-before, evStats.Acked)
}
