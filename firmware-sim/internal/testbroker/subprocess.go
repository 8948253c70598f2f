package testbroker

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envChild makes a test binary act as a broker process (see MaybeServe).
const envChild = "FIRMWARE_SIM_TESTBROKER_CHILD"

// MaybeServe turns the current process into a standalone broker when it
// was started by StartProcess: it prints the URL, serves until stdin
// closes and exits. Call it first thing in TestMain.
func MaybeServe() {
	if os.Getenv(envChild) != "1" {
		return
	}
	b, err := New(Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("URL", b.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
	b.Close()
	os.Exit(0)
}

// StartProcess runs a broker in a child copy of the test binary, so that
// memory measured in the test process is the fleet's alone. It returns the
// broker URL; the child exits when the test ends.
func StartProcess(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatalf("broker child: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "URL ")
	if !ok {
		tb.Fatalf("broker child said %q", line)
	}
	return url
}
