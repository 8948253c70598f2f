// Package harness runs the real weir binary for end-to-end tests: it
// builds the binaries once per test process, starts the gateway on free
// loopback ports from a few lines of options, drives it with a small fleet
// of paho devices that record every acknowledged message in a
// firmware-sim ledger, kills or stops it, reads back what it stored with
// `weir dump`, and checks the ledger against the dump.
//
// A typical test is a few lines:
//
//	w := harness.StartWeir(t, harness.Opts{})
//	f := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: 20})
//	time.Sleep(time.Second)
//	f.Stop()
//	w.Stop()
//	harness.CheckLedger(t, f.Ledger(), harness.Dump(t, w.DataDir, "telemetry"))
//
// Everything listens on 127.0.0.1 only, every wait is bounded, and every
// process a test starts is killed when the test ends, even when it fails
// half-way. Packages using the harness should call Main from TestMain so
// the build directory is removed at exit.
package harness
