package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
	"github.com/weir-gateway/weir/firmware-sim/scenario"
)

// Scenario loads firmware-sim/scenarios/NAME.yaml and returns its fleet
// configuration (without a broker).
func Scenario(t testing.TB, name string) fleet.Config {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	s, err := scenario.Load(filepath.Join(root, "firmware-sim", "scenarios", name+".yaml"))
	if err != nil {
		t.Fatalf("harness: scenario %s: %v", name, err)
	}
	return s.Config
}

// FleetRun is a firmware-sim fleet running in the background; see
// StartSimFleet.
type FleetRun struct {
	t          testing.TB
	cancel     context.CancelFunc
	done       chan struct{}
	summary    fleet.Summary
	err        error
	ledgerPath string
	file       *os.File
}

// StartSimFleet plays a firmware-sim fleet (fleet.Run, the simulator's
// own engine with its paho devices, reconnects and misbehaviour) against
// the broker in cfg.Broker, recording a ledger. Wait for the summary.
func StartSimFleet(t testing.TB, cfg fleet.Config) *FleetRun {
	t.Helper()
	r := &FleetRun{t: t, done: make(chan struct{}), ledgerPath: filepath.Join(t.TempDir(), "ledger.jsonl")}
	f, err := os.Create(r.ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	r.file = f
	cfg.Ledger = f
	// Bounded even for a fleet with no Duration: the run is cancelled
	// after the limit and the test fails in Wait.
	limit := cfg.Duration + 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.summary, r.err = fleet.Run(ctx, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		f.Close()
	})
	return r
}

// Wait returns the run's summary and ledger once the fleet is done.
func (r *FleetRun) Wait() (*Ledger, fleet.Summary) {
	r.t.Helper()
	<-r.done
	r.cancel()
	if r.err != nil {
		r.t.Fatalf("harness: fleet: %v", r.err)
	}
	if err := r.file.Sync(); err != nil {
		r.t.Fatal(err)
	}
	return ReadLedger(r.t, r.ledgerPath), r.summary
}

// RunSimFleet is StartSimFleet followed by Wait.
func RunSimFleet(t testing.TB, cfg fleet.Config) (*Ledger, fleet.Summary) {
	t.Helper()
	return StartSimFleet(t, cfg).Wait()
}
