package kinesalite

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pinned are the npm packages the tests may use, at exact versions.
var pinned = map[string]string{
	"kinesalite":      "3.3.3",
	"aws-kinesis-agg": "4.2.8",
	"s3rver":          "3.7.1", // integration/s3rver
}

// Pinned returns the pinned version of an npm package, "" if it is not
// pinned.
func Pinned(name string) string { return pinned[name] }

// ErrNoNode says node or npm is not installed.
var ErrNoNode = errors.New("kinesalite: node and npm are required (Debian: apt-get install nodejs npm, or run scripts/install-deps.sh)")

// RepoRoot finds the repository root (the directory holding go.mod and
// integration/) above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "integration")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("kinesalite: no go.mod with an integration directory above the working directory")
		}
		dir = parent
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// installedVersion returns the version of package name under modules, or "".
func installedVersion(modules, name string) string {
	b, err := os.ReadFile(filepath.Join(modules, name, "package.json"))
	if err != nil {
		return ""
	}
	var pj struct{ Version string }
	if json.Unmarshal(b, &pj) != nil {
		return ""
	}
	return pj.Version
}

var installMu sync.Mutex // in-process; the file lock covers other processes

// NodeModules returns a node_modules directory holding the pinned versions
// of pkgs (default: every pinned package), installing them if needed.
func NodeModules(pkgs ...string) (string, error) {
	if len(pkgs) == 0 {
		for p := range pinned {
			pkgs = append(pkgs, p)
		}
		sort.Strings(pkgs)
	}
	for _, p := range pkgs {
		if pinned[p] == "" {
			return "", fmt.Errorf("kinesalite: npm package %q is not pinned", p)
		}
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	candidates := []string{
		filepath.Join(root, "integration", "node_modules"),
		filepath.Join(root, "integration", ".npm", "node_modules"),
	}
	has := func(dir string) bool {
		for _, p := range pkgs {
			if installedVersion(dir, p) != pinned[p] {
				return false
			}
		}
		return true
	}
	for _, c := range candidates {
		if has(c) {
			return c, nil
		}
	}
	prefix := filepath.Join(root, "integration", ".npm")
	installMu.Lock()
	defer installMu.Unlock()
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(prefix, "install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("kinesalite: lock %s: %w", lock.Name(), err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if has(candidates[1]) { // another process installed it while we waited
		return candidates[1], nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", ErrNoNode
	}
	// Install every pinned package at once: npm prunes what the prefix's
	// package.json does not list.
	args := []string{"install", "--prefix", prefix, "--cache", prefix, "--no-audit", "--no-fund", "--save-exact", "--loglevel=error"}
	for p, v := range pinned {
		args = append(args, p+"@"+v)
	}
	cmd := exec.Command(npm, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kinesalite: npm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if !has(candidates[1]) {
		return "", fmt.Errorf("kinesalite: npm install finished but %v are not in %s", pkgs, candidates[1])
	}
	return candidates[1], nil
}

// Node runs a node script with NODE_PATH pointing at the pinned modules,
// feeding it stdin, and returns its stdout.
func Node(t testing.TB, script string, stdin []byte) []byte {
	t.Helper()
	modules, err := NodeModules()
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(ErrNoNode)
	}
	cmd := exec.Command(node, "-e", script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = strings.NewReader(string(stdin))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node script failed: %v\n%s", err, stderr.String())
	}
	return out
}
