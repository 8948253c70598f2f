package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/configs"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/gateway/consumer"
	"github.com/weir-gateway/weir/shards"
)

func TestVersion(t *testing.T) {
	out, _, code := weir(t, "version")
	if code != 0 || !strings.HasPrefix(out, "weir dev\nrevision: ") || !strings.Contains(out, "go: "+runtime.Version()+"\n") ||
		!strings.Contains(out, "platform: "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
		t.Fatalf("weir version: exit %d:\n%s", code, out)
	}
}

func TestConfigExample(t *testing.T) {
	out, _, code := weir(t, "config", "example")
	disk, err := os.ReadFile(filepath.Join("..", "..", "..", "configs", "weir.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != string(disk) || !bytes.Equal(configs.Example, disk) {
		t.Fatalf("weir config example: exit %d, %d bytes; want configs/weir.example.yaml (%d bytes)", code, len(out), len(disk))
	}
	if _, err := config.Parse("example", []byte(out)); err != nil {
		t.Fatalf("the printed example does not load: %v", err)
	}
	if _, errs, code := weir(t, "config"); code != 2 || !strings.Contains(errs, "weir config example") {
		t.Fatalf("weir config: exit %d, %q", code, errs)
	}
}

// TestCheckConfigUsage: without a file, a usage that says what is missing
// and lists the real flags, not an empty flag list.
func TestCheckConfigUsage(t *testing.T) {
	_, errs, code := weir(t, "check-config")
	if code != 2 || !strings.Contains(errs, "exactly one configuration FILE is required") || !strings.Contains(errs, "-route") ||
		strings.Contains(errs, "Flags:\n\n") || strings.HasSuffix(errs, "Flags:\n") {
		t.Fatalf("check-config without a file: exit %d:\n%s", code, errs)
	}
	// A command without flags prints no "Flags:" heading at all.
	var b bytes.Buffer
	fs := newFlags("x", "weir x", &b)
	fs.Usage()
	if b.String() != "Usage: weir x\n" {
		t.Fatalf("usage of a flagless command: %q", b.String())
	}
}

func TestCheckConfigShadowedRoutes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(path, []byte(`data_dir: /tmp/w
streams:
  - name: telemetry
routes:
  - filter: devices/#
    stream: telemetry
  - filter: devices/+/events/#
    stream: telemetry
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := weir(t, "check-config", path)
	want := path + `:7: warning: routes[1] (filter "devices/+/events/#") never matches: routes[0] (filter "devices/#", ` + path + `:5)`
	if code != 0 || !strings.Contains(out, ": ok") || !strings.Contains(errs, want) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want the warning %q", code, out, errs, want)
	}
}

// TestCheckConfigRouteDryRun prints route, stream, key and shard of a
// publish, the same shard the store picks.
func TestCheckConfigRouteDryRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(path, []byte(`data_dir: /tmp/w
streams:
  - name: telemetry
    shards: 4
  - name: events
routes:
  - filter: devices/+/events
    stream: events
    partition_key: "{payload.site}-{topic.1}"
  - filter: devices/+/telemetry
    stream: telemetry
    partition_key: "{topic.1}"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := weir(t, "check-config", path, "--route", "devices/d1/telemetry", "--payload", `{"t": 21.5}`)
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errs)
	}
	for _, re := range []string{`(?m)^route: +routes\[1\] "devices/\+/telemetry" \(.*weir\.yaml:10\)$`, `(?m)^stream: +telemetry$`,
		`(?m)^key: +d1 `, `(?m)^shard: +shardId-00000000000\d \(of 4\)$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("dry run output lacks %s:\n%s", re, out)
		}
	}
	// The store puts key d1 in the shard the dry run named.
	st, err := shards.Open(t.TempDir(), shards.Options{Streams: []shards.StreamConfig{shards.StreamConfig{Name: "telemetry", Shards: 4}.WithDefaults()}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := st.Append(context.Background(), "telemetry", &shards.Record{Key: "d1", Data: []byte("x")}, shards.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "shard:  "+res.ShardID+" ") {
		t.Errorf("the store put d1 in %s; the dry run said:\n%s", res.ShardID, out)
	}

	out, _, code = weir(t, "check-config", path, "--route", "devices/d1/events", "--payload", `{"site": "north"}`)
	if code != 0 || !strings.Contains(out, "key:    north-d1 ") || !strings.Contains(out, "stream: events") {
		t.Fatalf("payload key: exit %d:\n%s", code, out)
	}
	out, _, code = weir(t, "check-config", path, "--route", "devices/d1/events", "--payload", `{}`)
	if code != 1 || !strings.Contains(out, "refused") {
		t.Fatalf("unrenderable key: exit %d:\n%s", code, out)
	}
	out, _, code = weir(t, "check-config", path, "--route", "other/topic")
	if code != 1 || !strings.Contains(out, "route:  none") {
		t.Fatalf("unrouted topic: exit %d:\n%s", code, out)
	}
	if _, errs, code := weir(t, "check-config", path, "--route", "devices/+/x"); code != 2 || !strings.Contains(errs, "wildcards") {
		t.Fatalf("wildcard topic: exit %d, %q", code, errs)
	}
}

// TestDumpOnRunningGatewaySuggestsRead: the lock error comes with the
// command that works while the gateway runs.
func TestDumpOnRunningGatewaySuggestsRead(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	_, errs, code := weir(t, "dump", "--data-dir", g.dir, "--stream", "telemetry")
	if code != 1 || !strings.Contains(errs, "weir read telemetry") {
		t.Fatalf("dump beside a gateway: exit %d, %q", code, errs)
	}
}

// TestReadHintsAtRaw: a person reading JSON lines learns once that the
// data is base64 and how to see it as sent.
func TestReadHintsAtRaw(t *testing.T) {
	var out, hint bytes.Buffer
	p := &printer{out: &out, hint: &hint, stop: func() {}}
	for range 3 {
		if err := p.handle(context.Background(), consumerRecord("hi")); err != nil {
			t.Fatal(err)
		}
	}
	if hint.String() != base64Hint+"\n" || len(lines(out.String())) != 3 || !strings.Contains(hint.String(), "--format raw") {
		t.Fatalf("hint %q after %d lines", hint.String(), len(lines(out.String())))
	}
}

func TestStreamsNoteFitsARow(t *testing.T) {
	long := strings.Repeat("connection refused ", 30)
	n := forwarderNote("telemetry/forwarder:cloud", "upstream stream not found", long, false)
	if len(n) > noteWidth || !strings.HasPrefix(n, "telemetry/forwarder:cloud: upstream stream not found; last error: connection refused") ||
		!strings.HasSuffix(n, "(--verbose)") {
		t.Fatalf("note of %d characters: %q", len(n), n)
	}
	if v := forwarderNote("s/f", "", long, true); !strings.HasSuffix(v, strings.TrimSpace(long)) {
		t.Fatalf("--verbose cut the error: %q", v)
	}
	if forwarderNote("s/f", "", "", false) != "" {
		t.Fatal("a note for a forwarder with nothing to say")
	}
}

func consumerRecord(data string) consumer.Record {
	return consumer.Record{ShardID: "shardId-000000000000", SeqNum: 1, Key: "k", Data: []byte(data), Arrival: time.Now()}
}

// TestPackageConfigIsTheDefaults: the package's /etc/weir/weir.yaml is the
// embedded defaults with the data in /var/lib/weir, so installing the
// package behaves as a plain `weir` does.
func TestPackageConfigIsTheDefaults(t *testing.T) {
	f, err := config.Load(filepath.Join("..", "..", "..", "packaging", "weir.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := config.Default()
	if f.DataDir != "/var/lib/weir" {
		t.Errorf("data_dir %q, want /var/lib/weir", f.DataDir)
	}
	if !reflect.DeepEqual(f.Routes, d.Routes) || !reflect.DeepEqual(f.Streams, d.Streams) || !reflect.DeepEqual(f.MQTT, d.MQTT) ||
		!reflect.DeepEqual(f.API, d.API) || f.Auth != d.Auth || f.Durability != d.Durability || len(f.Forwarders) != 0 {
		t.Errorf("packaging/weir.yaml differs from the embedded defaults:\n%+v\n%+v", f, d)
	}
}

// TestQuickStartPublishes runs the README's quick start against the
// embedded defaults: mosquitto_pub, which makes up a client id per run,
// publishes twice to devices/d1/telemetry, and both records carry key d1;
// weir read --format raw prints the data as sent.
func TestQuickStartPublishes(t *testing.T) {
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatal("mosquitto_pub is not installed (Debian: mosquitto-clients; or run scripts/install-deps.sh)")
	}
	g := startGateway(t, gatewayOptions{})
	host, port, err := net.SplitHostPort(g.d.MQTTAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if out, err := exec.Command(pub, "-h", host, "-p", port, "-q", "1", "-t", "devices/d1/telemetry", "-m", "hi").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	out, errs, code := weir(t, "read", "telemetry", "--api", g.api)
	if code != 0 || len(lines(out)) != 2 {
		t.Fatalf("read: exit %d, %q, %q", code, out, errs)
	}
	for _, l := range lines(out) {
		if r := parseLine(t, l); r.Key != "d1" || r.ClientID == "d1" {
			t.Errorf("record %+v: want key d1 from the topic, whatever client id mosquitto_pub made up", r)
		}
	}
	if out, _, code := weir(t, "read", "telemetry", "--api", g.api, "--format", "raw"); code != 0 || out != "hi\nhi\n" {
		t.Fatalf("read --format raw: exit %d, %q", code, out)
	}
}
