package integration

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// TestCrashKill9 is issue 2's crash test: 50 devices publish QoS 1 as fast
// as acks allow to a gateway with fsync: always; the gateway is killed
// with SIGKILL at a random moment under load, its data is dumped right
// there (everything acknowledged before the kill must be in it), and it is
// restarted on the same data; after the last cycle a clean stop and a
// final dump check the whole run, including records written after each
// recovery.
func TestCrashKill9(t *testing.T) {
	loops := envInt(t, "WEIR_CRASH_LOOPS", 3)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kill -9 cycles", seed, loops)
	rng := rand.New(rand.NewPCG(seed, 0))

	w := harness.StartWeir(t, harness.Opts{})
	f := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: 50, Seed: seed})
	for i := 1; i <= loops; i++ {
		f.WaitAcked(f.Acked()+100, 20*time.Second)
		time.Sleep(500*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second))))
		w.Kill9()
		promised := f.Snapshot()
		r := harness.CheckLedger(t, promised, harness.Dump(t, w.DataDir, "telemetry"))
		t.Logf("cycle %d: killed after %d acks", i, len(promised.Entries))
		if r.Acked == 0 {
			t.Fatalf("cycle %d: no message was acknowledged before the kill", i)
		}
		w.Restart()
	}
	// The restarted gateway must take data again, not merely open.
	f.WaitAcked(f.Acked()+500, 20*time.Second)
	st := f.Stop()
	w.Stop()
	r := harness.CheckLedger(t, f.Ledger(), harness.Dump(t, w.DataDir, "telemetry"))
	t.Logf("fleet: %+v", st)
	if r.Devices != 50 {
		t.Errorf("%d devices got acks, want 50", r.Devices)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
