package kinesalite

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startScript runs kinesalite's server on a port the kernel picks, bound
// to loopback only (its CLI listens on every interface and needs a port
// chosen in advance, which races with other tests), prints the port, and
// exits when its stdin closes, so it dies with the test process. An
// exception kinesalite does not catch is logged and leaves only the
// request it was serving unanswered (the forwarder under test times it
// out and retries) rather than ending the server. One CI run lost its kinesalite mid-test, cause not captured;
// an unexpected exit is now reported with node's stderr.
const startScript = `
process.on('uncaughtException', (e) => process.stderr.write('uncaught: ' + (e && e.stack || e) + '\n'));
const k = require(process.argv[1]);
const s = k({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 10000});
s.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + s.address().port + '\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`

// Server is a running kinesalite (or another node server, see StartNode).
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	cmd      *exec.Cmd
	stdin    io.Closer
	stderr   lockedBuffer
	once     sync.Once
	stopping atomic.Bool
	exited   chan struct{} // closed once node has exited and been reaped
}

// Start starts kinesalite (installing kinesalite@3.3.3 if needed) and
// returns its endpoint and a stop function, also registered with
// t.Cleanup.
func Start(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	s, err := StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.Endpoint, s.Stop
}

// StartServer is Start without a testing.TB, for a TestMain that shares
// one server across tests.
func StartServer() (*Server, error) { return StartNode("kinesalite", startScript) }

// StartNode runs a server written in node from the pinned npm package
// pkg: script gets the package's directory as process.argv[1] and args
// after it, must print "PORT <n>" once it listens on 127.0.0.1:<n>, and
// must exit when its stdin closes (see startScript), so the server dies
// with the test process.
func StartNode(pkg, script string, args ...string) (*Server, error) {
	modules, err := NodeModules(pkg)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, ErrNoNode
	}
	cmd := exec.Command(node, append([]string{"-e", script, filepath.Join(modules, pkg)}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	cmd.Stderr = &s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start node: %w", pkg, err)
	}
	go func() {
		err := cmd.Wait()
		close(s.exited)
		if !s.stopping.Load() {
			// Every later request fails with "connection refused"; say
			// why here, where a test log will show it.
			fmt.Fprintf(os.Stderr, "%s (pid %d) exited unexpectedly: %v\nits stderr:\n%s\n", pkg, cmd.Process.Pid, err, s.stderrText())
		}
	}()
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "PORT "); ok {
				port <- p
			}
		}
		close(port)
	}()
	select {
	case p, ok := <-port:
		if !ok {
			s.Stop()
			return nil, fmt.Errorf("%s exited before listening: %s", pkg, s.stderrText())
		}
		s.Endpoint = "http://127.0.0.1:" + p
	case <-time.After(30 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("%s did not start within 30s: %s", pkg, s.stderrText())
	}
	return s, nil
}

// Stop kills the server; safe to call twice.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.stopping.Store(true)
		s.stdin.Close()
		s.cmd.Process.Kill()
		<-s.exited
	})
}

// lockedBuffer collects kinesalite's stderr for error messages; exec
// writes it from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (s *Server) stderrText() string {
	s.stderr.mu.Lock()
	defer s.stderr.mu.Unlock()
	return s.stderr.b.String()
}
