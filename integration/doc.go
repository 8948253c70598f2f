// Package integration holds weir's end-to-end tests: they build the real
// binaries, run the gateway on free loopback ports, drive it with device
// fleets, kill it, restart it, and check what it stored against what it
// acknowledged. Shared helpers live in integration/harness; the power-cut
// filesystem in integration/lazyfs; the Kinesis emulator setup in
// integration/kinesalite.
//
// Environment:
//   - WEIR_CRASH_LOOPS: kill -9/restart cycles of TestCrashKill9 (default 3).
//   - WEIR_POWERCUT_LOOPS: power cuts of TestPowerCutAlways/loop (default 4).
//   - WEIR_BIN: a weir binary to test instead of building gateway/cmd/weir.
package integration
