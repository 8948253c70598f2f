package integration

import (
	"os"
	"testing"

	"github.com/weir-gateway/weir/integration/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
