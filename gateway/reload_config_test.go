package gateway

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/internal/conf"
)

// syncBuffer is a log destination tests can read while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

const reloadBase = `data_dir: {{DATA}}
mqtt:
  listen: 127.0.0.1:0
api:
  listen: ""
streams:
  - name: telemetry
    shards: 2
  - name: old
routes:
  - filter: devices/+/telemetry
    stream: telemetry
    partition_key: "{topic.1}"
forwarders:
  - {stream: telemetry, target_stream: up, endpoint: "http://127.0.0.1:9", region: local}
`

// The changed file: a new stream and route, a changed rate, a restart-only
// listen address on line 4, log level, a forwarder replaced, one dropped
// stream.
const reloadNext = `data_dir: {{DATA}}
mqtt:
  listen: 127.0.0.1:1
log:
  level: debug
api:
  listen: ""
streams:
  - name: telemetry
    shards: 2
    rate: {records_per_sec: 5}
  - name: events
    shards: 1
routes:
  - filter: devices/+/telemetry
    stream: telemetry
    partition_key: "{topic.1}"
  - filter: devices/+/events
    stream: events
forwarders:
  - {stream: events, target_stream: up-events, endpoint: "http://127.0.0.1:9", region: local}
`

func writeConfig(t *testing.T, path, text, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "{{DATA}}", data)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadAppliesTheFile(t *testing.T) {
	level := zerolog.GlobalLevel()
	t.Cleanup(func() { zerolog.SetGlobalLevel(level) })
	dir := t.TempDir()
	path, data := filepath.Join(dir, "weir.yaml"), filepath.Join(dir, "data")
	writeConfig(t, path, reloadBase, data)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d, err := Start(cfg, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	addr := d.MQTTAddr().String()
	var lost int
	var lostMu sync.Mutex
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("d1").SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetConnectionLostHandler(func(mqtt.Client, error) { lostMu.Lock(); lost++; lostMu.Unlock() }))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	publish := func(topic string) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, []byte(`{"v":1}`)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	oldFwd := d.Forwarders()
	if len(oldFwd) != 1 {
		t.Fatalf("forwarders at start: %d", len(oldFwd))
	}

	// An invalid file: every error logged with file:line, nothing changes.
	writeConfig(t, path, reloadNext+"  - {stream: nope, target_stream: x, region: r}\nbogus: 1\n", data)
	err = d.Reload()
	if !errors.Is(err, ErrReloadRefused) || !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("invalid file: %v", err)
	}
	for _, want := range []string{`"at":"` + path + `:22"`, `"at":"` + path + `:23"`} {
		if len(logs.lines(want)) != 1 {
			t.Errorf("no single log line at %s:\n%s", want, strings.Join(logs.lines("config reload"), "\n"))
		}
	}
	if _, err := d.Store().Stream("events"); err == nil {
		t.Fatal("an invalid file created a stream")
	}
	if len(d.Forwarders()) != 1 || d.Forwarders()[0] != oldFwd[0] {
		t.Fatal("an invalid file changed the forwarders")
	}

	writeConfig(t, path, reloadNext, data)
	cs, err := d.reloadConfig()
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	// The report is Plan's, key by key.
	next, _ := config.Load(path)
	if plan := Plan(cfg, next); len(plan) != len(cs) {
		t.Errorf("Plan and Reload disagree:\nplan   %+v\nreload %+v", plan, cs)
	}
	publish("devices/d1/events")
	publish("devices/d1/telemetry")
	ev, err := d.Store().Stream("events")
	if err != nil {
		t.Fatalf("new stream not created: %v", err)
	}
	if sh := ev.Shards(); len(sh) != 1 {
		t.Fatalf("events shards = %+v", sh)
	}
	sh, _ := ev.Shard("shardId-000000000000")
	if recs, _, err := sh.Read(1, 10, 1<<20); err != nil || len(recs) != 1 || recs[0].Topic != "devices/d1/events" {
		t.Fatalf("new route not in effect: %+v, %v", recs, err)
	}
	if _, err := d.Store().Stream("old"); err != nil {
		t.Fatalf("a stream dropped from the file was deleted: %v", err)
	}
	tel, _ := d.Store().Stream("telemetry")
	if tel.Config().Rate.RecordsPerSec != 5 {
		t.Fatalf("rate not applied: %+v", tel.Config().Rate)
	}
	if zerolog.GlobalLevel() != zerolog.DebugLevel {
		t.Fatalf("log level = %v", zerolog.GlobalLevel())
	}
	// The restart-only key: one line with the new value's file:line, and
	// the broker still where it was (the client above never noticed).
	restart := logs.lines(`"key":"mqtt.listen"`)
	if len(restart) != 1 || !strings.Contains(restart[0], `"at":"`+path+`:3"`) || !strings.Contains(restart[0], "restart") {
		t.Fatalf("mqtt.listen report: %q", restart)
	}
	if d.MQTTAddr().String() != addr {
		t.Fatalf("listener moved to %v", d.MQTTAddr())
	}
	if kept := logs.lines(`"key":"streams"`); len(kept) != 1 || !strings.Contains(kept[0], "data stay") {
		t.Fatalf("dropped stream report: %q", kept)
	}
	fw := d.Forwarders()
	if len(fw) != 1 || fw[0].Config().TargetStream != "up-events" || fw[0] == oldFwd[0] {
		t.Fatalf("forwarders after reload: %+v", fw)
	}
	for _, want := range []struct {
		path   string
		effect conf.Effect
	}{{"mqtt.listen", conf.Restart}, {"log.level", conf.Live}, {"streams[0].rate.records_per_sec", conf.Live},
		{"streams[1]", conf.Live}, {"routes[1]", conf.Live}, {"forwarders[0]", conf.Live}, {"forwarders", conf.Live}, {"streams", conf.Kept}} {
		found := false
		for _, c := range cs {
			found = found || (c.Path == want.path && c.Effect == want.effect)
		}
		if !found {
			t.Errorf("no %s %v change in %+v", want.path, want.effect, cs)
		}
	}
	lostMu.Lock()
	defer lostMu.Unlock()
	if lost != 0 {
		t.Fatal("the client lost its connection during reloads")
	}
}
