package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// stderrLines collects a process's stderr line by line.
type stderrLines struct {
	mu    sync.Mutex
	lines []string
	raw   bytes.Buffer
}

func (s *stderrLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		s.mu.Lock()
		s.lines = append(s.lines, sc.Text())
		s.mu.Unlock()
	}
}

func (s *stderrLines) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// waitFor returns the first JSON line with message msg (a trailing *
// matches any rest) whose fields
// include every key, value pair of match.
func (s *stderrLines) waitFor(t *testing.T, msg string, match map[string]any) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	lines:
		for _, l := range s.snapshot() {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			got, _ := m["message"].(string)
			if prefix, ok := strings.CutSuffix(msg, "*"); got != msg && (!ok || !strings.HasPrefix(got, prefix)) {
				continue
			}
			for k, v := range match {
				if m[k] != v {
					continue lines
				}
			}
			return m
		}
	}
	t.Fatalf("no %q line %v in the log:\n%s", msg, match, strings.Join(s.snapshot(), "\n"))
	return nil
}

// duplicateKey returns a key that appears twice in the JSON object line.
func duplicateKey(line string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		k := tok.(string)
		if seen[k] {
			return k, nil
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
	}
	return "", nil
}

// TestJSONLogOfAStartConnectDisconnect runs weir as a process (this test
// binary, see TestMain) with log.format json and debug level, so that
// mochi's lines and the AWS SDK's are in it too, and checks what an
// operator's log pipeline gets: only JSON objects on stderr (no raw
// "SDK ... WARN" line), one key for the component (part), no key twice,
// durations with their unit in the key, and "mqtt login" and "mqtt
// disconnect" lines at info with the client id, remote address, protocol
// version and identity.
func TestJSONLogOfAStartConnectDisconnect(t *testing.T) {
	// A metadata endpoint that refuses IMDSv2 tokens makes the SDK warn
	// "falling back to IMDSv1" as soon as the forwarder looks for
	// credentials; the environment offers none other.
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer imds.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "weir.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
log:
  level: debug
  format: json
mqtt:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
streams:
  - name: telemetry
    shards: 1
routes:
  - filter: devices/#
    stream: telemetry
    partition_key: "{client_id}"
forwarders:
  - stream: telemetry
    target_stream: upstream
    region: eu-west-1
    endpoint: http://127.0.0.1:1
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	none := filepath.Join(dir, "none")
	cmd.Env = append(os.Environ(), "WEIR_TEST_AS_COMMAND=1", "HOME="+dir,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE=",
		"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none,
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_WEB_IDENTITY_TOKEN_FILE=",
		"NOTIFY_SOCKET=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &stderrLines{}
	readDone := make(chan struct{})
	go func() { logs.read(stderr); close(readDone) }()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	ready := logs.waitFor(t, "weir ready", nil)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + ready["mqtt"].(string)).SetClientID("dev-1").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := c.Publish("devices/dev-1/telemetry", 1, false, []byte("hi")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	c.Disconnect(250)
	login := logs.waitFor(t, "mqtt login", map[string]any{"client_id": "dev-1"})
	bye := logs.waitFor(t, "mqtt disconnect", map[string]any{"client_id": "dev-1"})
	for _, l := range []map[string]any{login, bye} {
		if l["level"] != "info" || l["part"] != "mqtt" || l["protocol"] != 4.0 || l["identity"] != "" ||
			!strings.HasPrefix(l["remote"].(string), "127.0.0.1:") {
			t.Errorf("connection line: %v", l)
		}
	}
	if _, ok := bye["reason"].(string); !ok {
		t.Errorf("disconnect line without a reason: %v", bye)
	}
	if _, ok := bye["connected_ms"].(float64); !ok {
		t.Errorf("disconnect line without connected_ms: %v", bye)
	}
	sdk := logs.waitFor(t, "falling back to IMDSv1*", map[string]any{"source": "aws-sdk"})
	if sdk["level"] != "warn" || sdk["part"] != "forwarder" || sdk["target_stream"] != "upstream" {
		t.Errorf("SDK line: %v", sdk)
	}
	logs.waitFor(t, "added hook", map[string]any{"source": "mochi", "part": "mqtt", "level": "debug"})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-readDone
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Errorf("weir exited with %v", err)
	}
	logs.waitFor(t, "stopped", nil)

	for i, line := range logs.snapshot() {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("line %d is not a JSON object: %q", i+1, line)
			continue
		}
		if dup, err := duplicateKey(line); err != nil || dup != "" {
			t.Errorf("line %d has key %q twice (%v): %s", i+1, dup, err, line)
		}
		if _, ok := m["component"]; ok {
			t.Errorf("line %d has a component key (the rule is part): %s", i+1, line)
		}
		for _, k := range []string{"retry_in", "probe_in", "drain", "target"} {
			if _, ok := m[k]; ok {
				t.Errorf("line %d has %q, a duration or name without its unit or full name: %s", i+1, k, line)
			}
		}
	}
	if stdout.Len() > 0 {
		t.Errorf("weir serve wrote to stdout: %q", stdout.String())
	}
}
