package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// The real clients the security tests drive: mosquitto_pub/sub/passwd
// (Debian's mosquitto-clients and mosquitto) and MQTT.js (npm, pinned in
// integration/package.json). scripts/install-deps.sh installs them all.

const mqttjsVersion = "5.16.0"

// clientLimit bounds one client run: a refused client answers in
// milliseconds, so hitting it means the gateway left the client hanging.
const clientLimit = 20 * time.Second

// runTool runs one external client and returns its stdout and stderr
// together (mosquitto_pub prints its refusals on stderr, -d output on
// stdout) and its exit code.
func runTool(t *testing.T, stdin string, name string, args ...string) (string, int) {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (Debian: mosquitto and mosquitto-clients; or run scripts/install-deps.sh): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v (killed): the gateway left it hanging\n%s", name, strings.Join(args, " "), clientLimit, out.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", name, err)
	}
	code := 0
	if ee != nil {
		code = ee.ExitCode()
	}
	return out.String(), code
}

// mqttVersions are the protocol versions every MQTT check runs with, as
// mosquitto_pub -V names them and as MQTT.js numbers them.
var mqttVersions = []struct {
	Mosq string
	JS   int
	V5   bool
}{{"mqttv311", 4, false}, {"mqttv5", 5, true}}

// mosqConn is how mosquitto_pub/sub reach a listener.
type mosqConn struct {
	Addr     string // 127.0.0.1:PORT
	Version  string // mqttv311 | mqttv5
	ID       string
	User     string
	Password string
	CAFile   string // TLS when set
	Cert     harness.KeyPair
}

func (c mosqConn) args() []string {
	host, port, _ := strings.Cut(c.Addr, ":")
	a := []string{"-h", host, "-p", port, "-V", c.Version}
	if c.ID != "" {
		a = append(a, "-i", c.ID)
	}
	if c.User != "" {
		a = append(a, "-u", c.User)
	}
	if c.Password != "" {
		a = append(a, "-P", c.Password)
	}
	if c.CAFile != "" {
		a = append(a, "--cafile", c.CAFile)
	}
	if c.Cert.CertFile != "" {
		a = append(a, "--cert", c.Cert.CertFile, "--key", c.Cert.KeyFile)
	}
	return a
}

// mosqPub publishes one QoS 1 message and waits for its PUBACK.
func mosqPub(t *testing.T, c mosqConn, topic, msg string, extra ...string) (string, int) {
	t.Helper()
	args := append(c.args(), "-q", "1", "-t", topic, "-m", msg)
	return runTool(t, "", "mosquitto_pub", append(args, extra...)...)
}

// mosqSubCodes subscribes to filters in one SUBSCRIBE, exits as soon as
// the SUBACK arrives (-E) and returns its per-filter codes as -d prints
// them ("Subscribed (mid: 1): 0, 135"), or nil if no SUBACK came.
func mosqSubCodes(t *testing.T, c mosqConn, filters ...string) ([]int, string) {
	t.Helper()
	args := append(c.args(), "-d", "-E", "-W", "5")
	for _, f := range filters {
		args = append(args, "-t", f)
	}
	out, _ := runTool(t, "", "mosquitto_sub", args...)
	for _, l := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(l, "Subscribed (mid: ")
		if !ok {
			continue
		}
		_, list, _ := strings.Cut(rest, "): ")
		var codes []int
		for _, f := range strings.Split(list, ",") {
			var n int
			if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err == nil {
				codes = append(codes, n)
			}
		}
		return codes, out
	}
	return nil, out
}

// probePlan is the JSON plan of integration/mqttjs/probe.js.
type probePlan struct {
	URL       string      `json:"url"`
	Version   int         `json:"version"`
	ClientID  string      `json:"clientId"`
	Username  string      `json:"username,omitempty"`
	Password  string      `json:"password,omitempty"`
	CA        string      `json:"ca,omitempty"`
	Cert      string      `json:"cert,omitempty"`
	Key       string      `json:"key,omitempty"`
	Steps     []probeStep `json:"steps,omitempty"`
	CollectMs int         `json:"collectMs,omitempty"`
}

type probeStep struct {
	Sub     *string `json:"sub,omitempty"`
	Pub     *string `json:"pub,omitempty"`
	Payload string  `json:"payload,omitempty"`
	QoS     int     `json:"qos,omitempty"`
	Retain  bool    `json:"retain,omitempty"`
	SleepMs int     `json:"sleepMs,omitempty"`
}

func sub(filter string, qos int) probeStep { return probeStep{Sub: &filter, QoS: qos} }
func pub(topic, payload string) probeStep  { return probeStep{Pub: &topic, Payload: payload, QoS: 1} }

// probeResult is what probe.js prints.
type probeResult struct {
	Connected bool `json:"connected"`
	Connack   *struct {
		Code int `json:"code"`
	} `json:"connack"`
	Error *struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Subacks [][]int `json:"subacks"`
	Pubacks []struct {
		Topic string `json:"topic"`
		Code  *int   `json:"code"`
	} `json:"pubacks"`
	Messages []struct {
		Topic   string `json:"topic"`
		Payload string `json:"payload"`
		Retain  bool   `json:"retain"`
	} `json:"messages"`
	Disconnect *struct {
		Code int `json:"code"`
	} `json:"disconnect"`
	Closed bool `json:"closed"`
}

// connackCode is the CONNACK's code, -1 if none came.
func (r probeResult) connackCode() int {
	if r.Connack == nil {
		return -1
	}
	return r.Connack.Code
}

// pubackCode is the i-th publish's PUBACK code, -1 if it got none.
func (r probeResult) pubackCode(i int) int {
	if i >= len(r.Pubacks) || r.Pubacks[i].Code == nil {
		return -1
	}
	return *r.Pubacks[i].Code
}

// subackCodes flattens the SUBACKs, one code per filter in order.
func (r probeResult) subackCodes() []int {
	var all []int
	for _, s := range r.Subacks {
		all = append(all, s...)
	}
	return all
}

func (r probeResult) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// mqttjs runs one probe session to its end.
func mqttjs(t *testing.T, plan probePlan) probeResult {
	t.Helper()
	p := startMQTTJS(t, plan)
	return p.result(t)
}

// probeProc is a probe running in the background, for tests where another
// client must act while this one is subscribed.
type probeProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	marks  chan string
	done   chan error
}

func startMQTTJS(t *testing.T, plan probePlan) *probeProc {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed (Debian: nodejs; or run scripts/install-deps.sh)")
	}
	script := filepath.Join(mqttjsDir(t), "probe.js")
	js, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	p := &probeProc{marks: make(chan string, 16), done: make(chan error, 1)}
	p.cmd = exec.Command(node, script, string(js))
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start MQTT.js probe: %v", err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	go func() {
		var rest bytes.Buffer
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if sc.Text() == "suback" {
				select {
				case p.marks <- sc.Text():
				default:
				}
				continue
			}
			rest.WriteString(sc.Text() + "\n")
		}
		io.Copy(io.Discard, stderr)
		err := p.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, rest.String())
		}
		p.done <- err
	}()
	return p
}

// waitSuback returns once the probe got a SUBACK.
func (p *probeProc) waitSuback(t *testing.T) {
	t.Helper()
	select {
	case <-p.marks:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("MQTT.js probe ended before its SUBACK (%v): %s", err, p.stdout.String())
	case <-time.After(clientLimit):
		t.Fatal("MQTT.js probe got no SUBACK")
	}
}

func (p *probeProc) result(t *testing.T) probeResult {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("MQTT.js probe: %v", err)
		}
	case <-time.After(clientLimit):
		p.cmd.Process.Kill()
		t.Fatalf("MQTT.js probe still running after %v: the gateway left it hanging", clientLimit)
	}
	var r probeResult
	if err := json.Unmarshal(bytes.TrimSpace(p.stdout.Bytes()), &r); err != nil {
		t.Fatalf("MQTT.js probe printed %q: %v", p.stdout.String(), err)
	}
	return r
}

// mqttjsDir is integration/mqttjs, after checking that node finds the
// pinned MQTT.js from there (integration/node_modules, by npm ci).
func mqttjsDir(t *testing.T) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "integration", "node_modules", "mqtt", "package.json"))
	var pj struct{ Version string }
	if err == nil {
		err = json.Unmarshal(b, &pj)
	}
	if err != nil || pj.Version != mqttjsVersion {
		t.Fatalf("MQTT.js %s is not in integration/node_modules (found %q, %v): run scripts/install-deps.sh", mqttjsVersion, pj.Version, err)
	}
	return filepath.Join(root, "integration", "mqttjs")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
