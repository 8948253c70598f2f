package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// buildCache builds each binary at most once per test process: building
// costs seconds, and every end-to-end test needs the same binaries.
type buildCache struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*builtBinary
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var builds = &buildCache{bins: map[string]*builtBinary{}}

// Main runs the tests and then removes the directory the binaries were
// built into. Call it from TestMain: os.Exit(harness.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	return code
}

// BuildBinaries builds the gateway (gateway/cmd/weir) and the device
// simulator (firmware-sim) and returns their paths.
func BuildBinaries(t testing.TB) (weirPath, simPath string) {
	t.Helper()
	return WeirBinary(t), SimBinary(t)
}

// WeirBinary builds gateway/cmd/weir once per process, unless WEIR_BIN
// names a binary to test instead (a release build, or one built with
// -race to hunt a data race under the crash test).
func WeirBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("WEIR_BIN"); p != "" {
		return p
	}
	return build(t, "weir", "./gateway/cmd/weir")
}

// SimBinary builds firmware-sim once per process.
func SimBinary(t testing.TB) string {
	t.Helper()
	return build(t, "firmware-sim", "./firmware-sim")
}

// WeirBenchBinary builds gateway/cmd/weir-bench once per process.
func WeirBenchBinary(t testing.TB) string {
	t.Helper()
	return build(t, "weir-bench", "./gateway/cmd/weir-bench")
}

func build(t testing.TB, name, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	b := builds.bins[name]
	if b == nil {
		b = &builtBinary{}
		builds.bins[name] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(name, pkg) })
	if b.err != nil {
		t.Fatalf("harness: build %s: %v", pkg, b.err)
	}
	return b.path
}

func goBuild(name, pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	builds.mu.Lock()
	if builds.dir == "" {
		builds.dir, err = os.MkdirTemp("", "weir-harness-bin-")
	}
	dir := builds.dir
	builds.mu.Unlock()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	// A plain build: the race detector belongs to the unit tests, and a
	// race build of the daemon would make the end-to-end tests measure it.
	cmd := exec.Command(goTool(), "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, msg)
	}
	return out, nil
}

// ModuleRoot is the directory holding go.mod, found from the working
// directory (go test runs each package in its own directory).
func ModuleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the weir module")
	}
	return filepath.Dir(mod), nil
}

// goTool prefers the go command on PATH and falls back to the toolchain
// that built the test, so the harness works from an IDE too.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
