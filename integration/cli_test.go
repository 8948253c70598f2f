package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/integration/harness"
)

// TestSIGTERMExitsCleanly stops the gateway while 50 devices publish as
// fast as they can: it must exit 0 within 5 s, and everything it
// acknowledged before going must be on disk.
func TestSIGTERMExitsCleanly(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{})
	f := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: 50})
	f.WaitAcked(1000, 20*time.Second)
	took := w.Stop()
	t.Logf("exited %v after SIGTERM, under load", took)
	f.Stop()
	harness.CheckLedger(t, f.Ledger(), harness.Dump(t, w.DataDir, "telemetry"))
}

// TestDefaultsNoArgs runs plain `weir`: MQTT on 127.0.0.1:1883, data in
// ./weir-data, stream "telemetry" of 4 shards, a topic outside devices/+/#
// stored keyed by client id.
func TestDefaultsNoArgs(t *testing.T) {
	dir := t.TempDir()
	w := harness.StartDefaults(t, dir)
	if fi, err := os.Stat(filepath.Join(dir, "weir-data")); err != nil || !fi.IsDir() {
		t.Fatalf("./weir-data was not created in the working directory: %v", err)
	}
	c := connect(t, w.MQTTURL(), "default-dev")
	publish(t, c, "any/topic/at/all", []byte("hello"))
	c.Disconnect(50)
	w.Stop()
	lines := harness.Dump(t, w.DataDir, "telemetry")
	if len(lines) != 1 {
		t.Fatalf("dump has %d records, want 1", len(lines))
	}
	if l := lines[0]; l.Key != "default-dev" || l.Topic != "any/topic/at/all" || string(l.Data) != "hello" {
		t.Errorf("stored %+v; want key default-dev (the client id), topic any/topic/at/all, data hello", l)
	}
	// Four shards: the last one exists, a fifth does not.
	if _, stderr, code := harness.RunWeir(t, dir, "dump", "--data-dir", w.DataDir, "--stream", "telemetry", "--shard", "shardId-000000000003"); code != 0 {
		t.Errorf("dump --shard shardId-000000000003: exit %d: %s", code, stderr)
	}
	if _, _, code := harness.RunWeir(t, dir, "dump", "--data-dir", w.DataDir, "--stream", "telemetry", "--shard", "shardId-000000000004"); code == 0 {
		t.Error("the default stream has a fifth shard, want 4")
	}
}

// TestCheckConfigReportsAllErrors feeds check-config a file with four
// independent mistakes: all four must be reported at once, each with its
// file:line.
func TestCheckConfigReportsAllErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `data_dir: ./data
mqtt:
  listen: 127.0.0.1:1883
  lisen_backlog: 10
durability:
  fsync: sometimes
streams:
  - name: telemetry
    shards: 4
    retention: forever
routes:
  - filter: devices/+/telemetry
    stream: nosuch
    partition_key: "{topic.1}"
`)
	_, stderr, code := harness.RunWeir(t, dir, "check-config", bad)
	if code == 0 {
		t.Fatalf("check-config accepted a bad file:\n%s", stderr)
	}
	for _, want := range []struct {
		line int
		word string
	}{{4, "lisen_backlog"}, {6, "sometimes"}, {10, "retention"}, {13, "nosuch"}} {
		prefix := fmt.Sprintf("%s:%d:", bad, want.line)
		found := false
		for _, l := range strings.Split(stderr, "\n") {
			if strings.Contains(l, prefix) && strings.Contains(l, want.word) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error at %s mentioning %q in:\n%s", prefix, want.word, stderr)
		}
	}

	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, `data_dir: /var/lib/weir
mqtt:
  listen: 127.0.0.1:1883
durability:
  fsync: always
  interval: 10ms
streams:
  - name: telemetry
    shards: 4
routes:
  - filter: devices/+/telemetry
    stream: telemetry
    partition_key: "{topic.1}"
`)
	if stdout, stderr, code := harness.RunWeir(t, dir, "check-config", good); code != 0 {
		t.Errorf("check-config rejected issue 2's minimal config (exit %d):\n%s%s", code, stdout, stderr)
	}
}

var (
	tsRE    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	seqRE   = regexp.MustCompile(`^(0|[1-9]\d*)$`)
	shardRE = regexp.MustCompile(`^shardId-\d{12}$`)
)

// TestDumpOutput checks every field `weir dump` promises, on records whose
// content the test knows, and the --shard filter.
func TestDumpOutput(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{})
	start := time.Now()
	c := connect(t, w.MQTTURL(), "dump-client")
	sent := map[string][]string{}
	for i := 1; i <= 3; i++ {
		for _, dev := range []string{"sensor-a", "sensor-b"} {
			data := fmt.Sprintf("%s-%d", dev, i)
			publish(t, c, "devices/"+dev+"/telemetry", []byte(data))
			sent[dev] = append(sent[dev], data)
		}
	}
	c.Disconnect(50)
	w.Stop()
	end := time.Now()

	stdout, stderr, code := harness.RunWeir(t, "", "dump", "--data-dir", w.DataDir, "--stream", "telemetry")
	if code != 0 {
		t.Fatalf("dump: exit %d: %s", code, stderr)
	}
	raw := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(raw) != 6 {
		t.Fatalf("dump printed %d lines, want 6:\n%s", len(raw), stdout)
	}
	got := map[string][]string{}
	shardOf := map[string]string{}
	for _, line := range raw {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON object: %s", line)
		}
		str := func(k string) string {
			var s string
			if err := json.Unmarshal(m[k], &s); err != nil {
				t.Errorf("field %q is not a JSON string in %s", k, line)
			}
			return s
		}
		shard, seq, key, ts := str("shard"), str("seq"), str("key"), str("ts")
		topic, client, data := str("topic"), str("client_id"), str("data")
		if !shardRE.MatchString(shard) || !seqRE.MatchString(seq) || !tsRE.MatchString(ts) {
			t.Errorf("bad shard %q, seq %q or ts %q (want shardId-NNNNNNNNNNNN, a decimal string, RFC 3339 UTC with ms)", shard, seq, ts)
		}
		if at, err := time.Parse(time.RFC3339, ts); err != nil || at.Before(start.Add(-time.Second)) || at.After(end.Add(time.Second)) {
			t.Errorf("ts %s is not between the test's start %s and end %s", ts, start.UTC(), end.UTC())
		}
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			t.Errorf("data %q is not base64: %v", data, err)
		}
		if topic != "devices/"+key+"/telemetry" || client != "dump-client" {
			t.Errorf("key %q, topic %q, client_id %q: want the key to be topic level 1 and client_id dump-client", key, topic, client)
		}
		got[key] = append(got[key], string(b))
		if s, ok := shardOf[key]; ok && s != shard {
			t.Errorf("key %s stored in two shards: %s and %s", key, s, shard)
		}
		shardOf[key] = shard
	}
	for dev, want := range sent {
		if strings.Join(got[dev], ",") != strings.Join(want, ",") {
			t.Errorf("%s: stored %v, want %v in order", dev, got[dev], want)
		}
	}

	only := harness.Dump(t, w.DataDir, "telemetry", shardOf["sensor-a"])
	for _, l := range only {
		if l.Shard != shardOf["sensor-a"] {
			t.Errorf("dump --shard %s printed a record of %s", shardOf["sensor-a"], l.Shard)
		}
	}
	if len(only) < 3 {
		t.Errorf("dump --shard %s printed %d records, want sensor-a's 3 at least", shardOf["sensor-a"], len(only))
	}
	if _, _, code := harness.RunWeir(t, "", "dump", "--data-dir", w.DataDir, "--stream", "nosuch"); code == 0 {
		t.Error("dump of a stream that does not exist exited 0")
	}
}

// TestUnroutedDeliveredNotStored: a publish no route covers still reaches
// subscribers, as with any broker, but is not stored.
func TestUnroutedDeliveredNotStored(t *testing.T) {
	w := harness.StartWeir(t, harness.Opts{})
	got := make(chan []byte, 1)
	sub := connect(t, w.MQTTURL(), "commander")
	if tok := sub.Subscribe("commands/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- m.Payload():
		default:
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := connect(t, w.MQTTURL(), "device-1")
	publish(t, pub, "commands/device-1/reboot", []byte("now"))
	publish(t, pub, "commands/device-1/reboot", []byte("again"))
	publish(t, pub, "devices/device-1/telemetry", []byte("stored"))
	select {
	case b := <-got:
		if !bytes.Equal(b, []byte("now")) {
			t.Errorf("subscriber got %q, want %q", b, "now")
		}
	case <-time.After(5 * time.Second):
		t.Error("the unrouted publish never reached the subscriber")
	}
	sub.Disconnect(50)
	pub.Disconnect(50)
	w.Stop()
	lines := harness.Dump(t, w.DataDir, "telemetry")
	if len(lines) != 1 || string(lines[0].Data) != "stored" {
		t.Errorf("stored %d records (%+v), want only the routed one", len(lines), lines)
	}
	// The operator hears about the unrouted topic once, not per publish.
	if n := strings.Count(w.Log(), "matched no route"); n != 1 || !strings.Contains(w.Log(), "commands/device-1/reboot") {
		t.Errorf("%d log lines about the unrouted topic, want 1 naming it:\n%s", n, w.Log())
	}
}

// TestNonLoopbackWithoutAuthRefused: like Mosquitto 2.0, weir refuses to
// expose an unauthenticated broker beyond loopback unless told to.
func TestNonLoopbackWithoutAuthRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "open.yaml")
	writeFile(t, cfg, fmt.Sprintf(`data_dir: %s
mqtt:
  listen: 0.0.0.0:%d
api:
  listen: ""
streams:
  - name: telemetry
`, filepath.Join(dir, "data"), harness.FreePort(t)))
	_, stderr, code := harness.RunWeirFor(t, 15*time.Second, dir, "serve", "--config", cfg)
	if code == 0 {
		t.Fatal("weir started an anonymous broker on 0.0.0.0")
	}
	if !strings.Contains(stderr, "allow_anonymous") {
		t.Errorf("the refusal does not tell the operator about allow_anonymous:\n%s", stderr)
	}
}

func connect(t *testing.T, broker, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, broker, tok.Error())
	}
	return c
}

func publish(t *testing.T, c mqtt.Client, topic string, data []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, data); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: no PUBACK (%v)", topic, tok.Error())
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadmeAWSCLIExample runs the README's `aws kinesis` lines as written
// (the endpoint pointed at a test gateway) on a machine with no AWS
// configuration at all: no region, no credentials, a fresh HOME. They must
// work, not stop at "You must specify a region" or "Unable to locate
// credentials".
func TestReadmeAWSCLIExample(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the examples for the loopback defaults: the secured ones sign
	// with keys of a credentials file.
	examples := regexp.MustCompile(`(?m)^ +(aws kinesis [^\n]*--endpoint-url http://127\.0\.0\.1:4588[^\n]*)$`).FindAllStringSubmatch(string(readme), -1)
	if len(examples) == 0 {
		t.Fatal("README has no `aws kinesis ... --endpoint-url http://127.0.0.1:4588` example")
	}
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("the AWS CLI is not installed (Debian: awscli; or run scripts/install-deps.sh)")
	}
	w := harness.StartWeir(t, harness.Opts{})
	home := t.TempDir()
	for _, ex := range examples {
		line := strings.Replace(ex[1], "http://127.0.0.1:4588", w.APIURL(), 1)
		cmd := exec.Command(aws, strings.Fields(line)[1:]...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_PAGER="}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "telemetry") {
			t.Errorf("README example %q on a clean machine: %v\n%s", ex[1], err, out)
		}
	}
}
