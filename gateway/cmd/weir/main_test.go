package main

import (
	"os"
	"testing"
)

// TestMain lets a test run this test binary as the weir command (see
// runWeir): with WEIR_TEST_AS_COMMAND set, it is weir, not the tests.
func TestMain(m *testing.M) {
	if os.Getenv("WEIR_TEST_AS_COMMAND") == "1" {
		raiseGOMAXPROCS()
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
