package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// Routes swapped while devices publish: nobody is disconnected, every
// publish is acknowledged and stored exactly under the routes in force
// when it was routed, and a publish held inside the sink when the swap
// happens finishes under the route it started with.
func TestApplySwapsRoutesUnderLoad(t *testing.T) {
	held := make(chan struct{})
	release := make(chan struct{})
	sink := &fakeSink{fn: func(_ context.Context, _ string, rec *shards.Record, _ shards.AppendOptions) error {
		if rec.Topic == "devices/slow/telemetry" && string(rec.Data) == "first" {
			close(held)
			<-release
		}
		return nil
	}}
	b := startBroker(t, sink, brokerOpts{})

	connect := func(id string, lost *atomic.Int32) paho.Client {
		t.Helper()
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr().String()).SetClientID(id).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
			SetConnectionLostHandler(func(paho.Client, error) { lost.Add(1) }))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	var lost atomic.Int32
	slow := connect("slow", &lost)
	slowTok := slow.Publish("devices/slow/telemetry", 1, false, []byte("first"))
	<-held

	// Devices publish telemetry and events throughout.
	const devices, each = 4, 60
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range devices {
		c := connect(fmt.Sprintf("d%d", i), &lost)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				topic := fmt.Sprintf("devices/d%d/telemetry", i)
				if n%2 == 1 {
					topic = fmt.Sprintf("devices/d%d/events", i)
				}
				if tok := c.Publish(topic, 1, false, []byte("x")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					failed.Add(1)
				}
			}
		}()
	}
	next := []Route{
		{Filter: "devices/+/events", Stream: "events", PartitionKey: "{client_id}"},
		{Filter: "devices/+/telemetry", Stream: "telemetry2", PartitionKey: "{topic.1}"},
	}
	// Swap back and forth while the devices publish (the race detector
	// watches the hook's reads), ending on next.
	for range 20 {
		if _, err := b.Apply(testConfig(), defaultRoutes); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		cs, err := b.Apply(testConfig(), next)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 2 || cs[0].Path != "routes[0]" || cs[1].Path != "routes[1]" || cs[0].Effect != conf.Live {
			t.Fatalf("changes = %+v", cs)
		}
	}
	close(release)
	if !slowTok.WaitTimeout(5*time.Second) || slowTok.Error() != nil {
		t.Fatalf("held publish: %v", slowTok.Error())
	}
	wg.Wait()
	if tok := slow.Publish("devices/slow/telemetry", 1, false, []byte("second")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish after the swap: %v", tok.Error())
	}

	if failed.Load() != 0 || lost.Load() != 0 {
		t.Fatalf("%d publishes failed, %d clients lost their connection", failed.Load(), lost.Load())
	}
	streamOf := map[string]string{}
	for _, s := range sink.stored() {
		if s.rec.ClientID == "slow" {
			streamOf[string(s.rec.Data)] = s.stream
		}
		if s.rec.Topic[len(s.rec.Topic)-6:] == "events" && s.stream != "events" {
			t.Errorf("event %s stored in %q: events were never routed anywhere else", s.rec.Topic, s.stream)
		}
	}
	if streamOf["first"] != "telemetry" || streamOf["second"] != "telemetry2" {
		t.Fatalf("slow device's records went to %v; want first under the old route (telemetry), second under the new (telemetry2)", streamOf)
	}
	if got := b.Routes(); len(got) != 2 || got[1].Stream != "telemetry2" {
		t.Fatalf("Routes() = %+v", got)
	}
	if s := b.Stats(); s.Disconnected != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// The mqtt section cannot change live: Apply reports each key as needing
// a restart and keeps the running value; a route that does not compile
// changes nothing.
func TestApplyReportsRestartKeysAndRefusesBadRoutes(t *testing.T) {
	b := startBroker(t, &fakeSink{}, brokerOpts{})
	cfg := testConfig()
	cfg.Listen = "127.0.0.1:1"
	cfg.MaxInflight = 7
	cfg.Listeners = []ListenerConfig{{Listen: "127.0.0.1:2"}}
	cs, err := b.Apply(cfg, defaultRoutes)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mqtt.listen", "mqtt.max_inflight", "mqtt.listeners[0]"}
	if len(cs) != len(want) {
		t.Fatalf("changes = %+v, want %v", cs, want)
	}
	for i, c := range cs {
		if c.Path != want[i] || c.Effect != conf.Restart {
			t.Errorf("change %d = %+v, want %s restart", i, c, want[i])
		}
	}
	if b.cfg.Listen != "127.0.0.1:0" || b.cfg.MaxInflight != 64 {
		t.Fatalf("running mqtt config changed: %+v", b.cfg)
	}
	if _, err := b.Apply(testConfig(), []Route{{Filter: "a/#/b", Stream: "x"}}); err == nil {
		t.Fatal("a bad filter was accepted")
	}
	if got := b.Routes(); len(got) != 1 || got[0] != defaultRoutes[0] {
		t.Fatalf("routes after a refused Apply = %+v", got)
	}
}
