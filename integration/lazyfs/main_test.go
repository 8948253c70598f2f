package lazyfs

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	// A test binary killed mid-run leaves dead mounts; clear them before
	// they make the temp directory undeletable.
	if swept, err := SweepStale(os.TempDir()); err != nil || len(swept) > 0 {
		fmt.Fprintf(os.Stderr, "lazyfs: swept stale mounts %v (err %v)\n", swept, err)
	}
	goleak.VerifyTestMain(m)
}
