package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/weir-gateway/weir/gateway/apiclient"
)

// How long the harness waits for the gateway; generous because CI runs
// the race-enabled unit tests of other packages on the same two cores.
const (
	readyTimeout = 20 * time.Second
	killTimeout  = 10 * time.Second
	// StopTimeout is the promise: SIGTERM → exit 0 within 5 s.
	StopTimeout = 5 * time.Second
)

// Opts describes a gateway to start. The zero value is the crash test's
// gateway: fsync always, one stream "telemetry" of 4 shards without rate
// limits, and devices/+/telemetry routed to it keyed by the device's topic
// level ({topic.1}).
type Opts struct {
	// DataDir defaults to a fresh t.TempDir().
	DataDir string
	// Streams default to one "telemetry" stream of 4 shards.
	Streams []Stream
	// Routes default to devices/+/telemetry → first stream, "{topic.1}".
	Routes []Route
	// Fsync is "always" (default) or "interval"; Interval goes with it.
	Fsync    string
	Interval time.Duration
	// MQTT holds extra YAML lines for the mqtt: section
	// (e.g. "max_inflight: 16").
	MQTT string
	// NoAPI leaves the Kinesis API off; by default it listens on a free
	// loopback port.
	NoAPI bool
	// Extra is YAML appended at the top level (e.g. a forwarders: list).
	Extra string
	// YAML, if set, is the whole configuration instead of the above: a
	// text/template with {{.DataDir}}, {{.MQTT}} and {{.API}} (host:port).
	YAML string
	// Env is added to the gateway's environment (AWS_* for forwarders).
	Env []string
}

// Stream is one entry of streams:.
type Stream struct {
	Name   string
	Shards int // default 4
	// Rate is the rate: value as a YAML flow map; "" turns limits off so
	// that tests measure the gateway, not the Kinesis-like throttle.
	Rate string
	// Extra holds more keys of the stream, one "key: value" per line.
	Extra string
}

// Route is one entry of routes:.
type Route struct {
	Filter, Stream, PartitionKey string
}

// Weir is a gateway process. Methods fail the test on error; they must be
// called from the test goroutine.
type Weir struct {
	t          testing.TB
	Bin        string
	DataDir    string
	ConfigPath string
	LogPath    string
	MQTTAddr   string // 127.0.0.1:PORT
	APIAddr    string // "" when NoAPI
	env        []string
	args       []string // after the binary; default serve --config ConfigPath
	dir        string   // working directory; "" = the test's

	mu     sync.Mutex
	proc   *process
	starts int
	api    *apiclient.Client
}

// API returns a client of the gateway's API (the same across restarts:
// the port stays). It signs with the test process's AWS credential chain,
// unsigned when that is empty. It may be called from any goroutine.
func (w *Weir) API() (*apiclient.Client, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.api == nil {
		c, err := apiclient.New(apiclient.Options{Endpoint: w.APIURL()})
		if err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		w.api = c
	}
	return w.api, nil
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returns
	err  error         // Wait's result, valid after done
}

// StartWeir writes a configuration from o, starts `weir serve --config`
// and returns once the MQTT port accepts connections. The process is
// killed when the test ends; its log is printed if the test failed.
func StartWeir(t testing.TB, o Opts) *Weir {
	t.Helper()
	w := &Weir{t: t, Bin: WeirBinary(t), DataDir: o.DataDir, env: o.Env}
	dir := t.TempDir()
	if w.DataDir == "" {
		w.DataDir = filepath.Join(dir, "data")
	}
	w.ConfigPath = filepath.Join(dir, "weir.yaml")
	w.LogPath = filepath.Join(dir, "weir.log")
	w.MQTTAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	if !o.NoAPI {
		w.APIAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	}
	cfg, err := renderConfig(o, w)
	if err != nil {
		t.Fatalf("harness: config: %v", err)
	}
	if err := os.WriteFile(w.ConfigPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.cleanup)
	w.start()
	return w
}

// DefaultMQTTAddr and DefaultAPIAddr are where plain `weir` listens.
const (
	DefaultMQTTAddr = "127.0.0.1:1883"
	DefaultAPIAddr  = "127.0.0.1:4588"
)

// StartDefaults runs plain `weir` (embedded defaults, no arguments) in the
// working directory dir, so its data lands in dir/weir-data. The default
// ports must be free: the test fails with a clear message if another
// broker already holds them, rather than talking to that broker.
func StartDefaults(t testing.TB, dir string) *Weir {
	t.Helper()
	for _, addr := range []string{DefaultMQTTAddr, DefaultAPIAddr} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("harness: plain weir needs %s, but it is taken on this machine (%v): stop whatever listens there", addr, err)
		}
		l.Close()
	}
	w := &Weir{t: t, Bin: WeirBinary(t), DataDir: filepath.Join(dir, "weir-data"), args: []string{},
		dir: dir, MQTTAddr: DefaultMQTTAddr, APIAddr: DefaultAPIAddr, LogPath: filepath.Join(t.TempDir(), "weir.log")}
	t.Cleanup(w.cleanup)
	w.start()
	return w
}

// MQTTURL is the broker's URL for paho and firmware-sim.
func (w *Weir) MQTTURL() string { return "tcp://" + w.MQTTAddr }

// APIURL is the Kinesis-compatible API's base URL ("" when NoAPI).
func (w *Weir) APIURL() string {
	if w.APIAddr == "" {
		return ""
	}
	return "http://" + w.APIAddr
}

// PID is the running process's id (0 when not running).
func (w *Weir) PID() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc == nil || w.proc.exited() {
		return 0
	}
	return w.proc.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (w *Weir) Running() bool { return w.PID() != 0 }

// Log returns everything the gateway wrote to stdout and stderr so far,
// across restarts.
func (w *Weir) Log() string {
	b, _ := os.ReadFile(w.LogPath)
	return string(b)
}

// Kill9 sends SIGKILL, as a power cut would end the process (but not the
// page cache: see integration/lazyfs for that), and waits for it to die.
func (w *Weir) Kill9() {
	w.t.Helper()
	p := w.running("Kill9")
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !p.exited() {
		w.t.Fatalf("harness: kill -9: %v", err)
	}
	if !p.wait(killTimeout) {
		w.t.Fatalf("harness: weir still alive %v after SIGKILL", killTimeout)
	}
}

// Stop sends SIGTERM and asserts a clean exit (status 0) within
// StopTimeout. It returns how long the exit took.
func (w *Weir) Stop() time.Duration {
	w.t.Helper()
	p := w.running("Stop")
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.exited() {
		w.t.Fatalf("harness: SIGTERM: %v", err)
	}
	if !p.wait(StopTimeout) {
		p.cmd.Process.Kill()
		p.wait(killTimeout)
		w.t.Fatalf("harness: weir did not exit within %v of SIGTERM (killed)\n%s", StopTimeout, w.logTail())
	}
	took := time.Since(start)
	if p.err != nil {
		w.t.Errorf("harness: weir exited after SIGTERM with %v, want status 0\n%s", p.err, w.logTail())
	}
	return took
}

// Restart starts the gateway again on the same data directory, config
// and ports, after Kill9 or Stop.
func (w *Weir) Restart() {
	w.t.Helper()
	w.mu.Lock()
	p := w.proc
	w.mu.Unlock()
	if p != nil && !p.exited() {
		w.t.Fatal("harness: Restart while weir is still running; Kill9 or Stop first")
	}
	w.start()
}

// Exit waits up to d for the process to end by itself and returns its
// exit code (-1 if killed by a signal); ok is false if it is still running.
func (w *Weir) Exit(d time.Duration) (code int, ok bool) {
	w.mu.Lock()
	p := w.proc
	w.mu.Unlock()
	if p == nil || !p.wait(d) {
		return 0, false
	}
	return exitCode(p.err), true
}

func (w *Weir) start() {
	w.t.Helper()
	w.mu.Lock()
	w.starts++
	n := w.starts
	w.mu.Unlock()
	logf, err := os.OpenFile(w.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== harness: start #%d at %s\n", n, time.Now().Format(time.RFC3339Nano))
	args := w.args
	if args == nil {
		args = []string{"serve", "--config", w.ConfigPath}
	}
	cmd := exec.Command(w.Bin, args...)
	cmd.Dir = w.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), w.env...)
	// If the test binary dies (a -timeout panic), take the gateway with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		w.t.Fatalf("harness: start weir: %v", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	w.mu.Lock()
	w.proc = p
	w.mu.Unlock()
	w.waitReady(p)
}

// waitReady returns once the MQTT port (opened last by the daemon, after
// the store and the API) accepts a connection.
func (w *Weir) waitReady(p *process) {
	w.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if p.exited() {
			w.t.Fatalf("harness: weir exited while starting (%v)\n%s", p.err, w.logTail())
		}
		c, err := net.DialTimeout("tcp", w.MQTTAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("harness: weir's MQTT port %s did not accept within %v: %v\n%s", w.MQTTAddr, readyTimeout, err, w.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *Weir) running(op string) *process {
	w.t.Helper()
	w.mu.Lock()
	p := w.proc
	w.mu.Unlock()
	if p == nil {
		w.t.Fatalf("harness: %s: weir was never started", op)
	}
	if p.exited() {
		// Not by the harness: it waits for every exit it causes. On a
		// shared machine, look for someone's pkill/killall.
		w.t.Fatalf("harness: %s: weir is not running; it exited by itself or by someone else's signal (%s)\n%s", op, exitDesc(p.err), w.logTail())
	}
	return p
}

func (w *Weir) cleanup() {
	w.mu.Lock()
	p := w.proc
	w.mu.Unlock()
	if p != nil && !p.exited() {
		p.cmd.Process.Kill()
		p.wait(killTimeout)
	}
	if w.t.Failed() {
		w.t.Logf("harness: weir log (%s):\n%s", w.LogPath, w.logTail())
	}
}

// logTail is the end of the log, enough to see why a start or stop failed.
func (w *Weir) logTail() string {
	const max = 12 << 10
	b := []byte(w.Log())
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		b = append([]byte("[...]\n"), b...)
	}
	return string(b)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

func exitDesc(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// RunWeir runs a short weir command (check-config, dump, version, ...)
// with a bounded time and returns its output and exit code.
func RunWeir(t testing.TB, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return RunWeirFor(t, 60*time.Second, dir, args...)
}

// RunWeirFor is RunWeir with a time limit of its own; the test fails if
// the command is still running then (it is killed).
func RunWeirFor(t testing.TB, limit time.Duration, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, WeirBinary(t), args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("harness: weir %s: still running after %v (killed)\n%s", strings.Join(args, " "), limit, e.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("harness: weir %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), exitCode(err)
}

func renderConfig(o Opts, w *Weir) (string, error) {
	if o.YAML != "" {
		tmpl, err := template.New("config").Option("missingkey=error").Parse(o.YAML)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = tmpl.Execute(&b, map[string]string{"DataDir": w.DataDir, "MQTT": w.MQTTAddr, "API": w.APIAddr})
		return b.String(), err
	}
	streams := o.Streams
	if len(streams) == 0 {
		streams = []Stream{{Name: "telemetry"}}
	}
	routes := o.Routes
	if routes == nil {
		routes = []Route{{Filter: "devices/+/telemetry", Stream: streams[0].Name, PartitionKey: "{topic.1}"}}
	}
	fsync := o.Fsync
	if fsync == "" {
		fsync = "always"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\n", strconv.Quote(w.DataDir))
	b.WriteString("log: {level: info, format: json}\n")
	fmt.Fprintf(&b, "mqtt:\n  listen: %s\n", w.MQTTAddr)
	b.WriteString(indent(o.MQTT, "  "))
	fmt.Fprintf(&b, "durability:\n  fsync: %s\n", fsync)
	if o.Interval > 0 {
		fmt.Fprintf(&b, "  interval: %s\n", o.Interval)
	}
	fmt.Fprintf(&b, "api:\n  listen: %s\n", strconv.Quote(w.APIAddr))
	b.WriteString("streams:\n")
	for _, s := range streams {
		shards := s.Shards
		if shards == 0 {
			shards = 4
		}
		rate := s.Rate
		if rate == "" {
			rate = "{records_per_sec: 0, bytes_per_sec: 0}"
		}
		fmt.Fprintf(&b, "  - name: %s\n    shards: %d\n    rate: %s\n", s.Name, shards, rate)
		b.WriteString(indent(s.Extra, "    "))
	}
	if len(routes) > 0 {
		b.WriteString("routes:\n")
		for _, r := range routes {
			fmt.Fprintf(&b, "  - filter: %s\n    stream: %s\n    partition_key: %s\n",
				strconv.Quote(r.Filter), r.Stream, strconv.Quote(r.PartitionKey))
		}
	}
	if o.Extra != "" {
		b.WriteString(strings.TrimRight(o.Extra, "\n") + "\n")
	}
	return b.String(), nil
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}
