package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/internal/promtest"
)

// An http sink configured in the daemon delivers what devices publish,
// filtered, under the shared uplink, and shows in DescribeGateway and
// /metrics with its kind and name.
func TestHTTPSinkInDaemon(t *testing.T) {
	var mu sync.Mutex
	var got []forwarder.Envelope
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var envs []forwarder.Envelope
		if err := json.NewDecoder(r.Body).Decode(&envs); err != nil {
			t.Errorf("body: %v", err)
		}
		if r.Header.Get("X-Source") != "plant-7" {
			t.Errorf("X-Source %q", r.Header.Get("X-Source"))
		}
		mu.Lock()
		got = append(got, envs...)
		mu.Unlock()
	}))
	defer backend.Close()

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Uplink.MaxBytesPerSec = 1 << 20
	fc := forwarder.Config{Stream: "telemetry", Kind: forwarder.KindHTTP, Name: "hook", Priority: 5,
		Filter: forwarder.Filter{Topics: []string{"devices/+/alarm"}},
		HTTP:   forwarder.HTTPConfig{URL: backend.URL, Headers: []forwarder.Header{{Name: "X-Source", Value: "plant-7"}}}}
	cfg.Forwarders = []forwarder.Config{fc.WithDefaults()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, cfg)

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + d.MQTTAddr().String()).SetClientID("dev-1").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for i, topic := range []string{"devices/dev-1/alarm", "devices/dev-1/telemetry", "devices/dev-1/alarm"} {
		if tok := c.Publish(topic, 1, false, []byte{byte('0' + i)}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 && len(d.forwarderStatus()) == 1 && d.forwarderStatus()[0].Filtered == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d, status %+v", n, d.forwarderStatus())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	if len(got) != 2 || string(got[0].Data) != "0" || string(got[1].Data) != "2" || got[0].Topic != "devices/dev-1/alarm" {
		t.Errorf("delivered %+v", got)
	}
	mu.Unlock()

	st := d.forwarderStatus()[0]
	if st.Kind != "http" || st.Sink != "hook" || st.Consumer != "forwarder:hook" || st.TargetStream != "http:"+backend.URL || st.Sent != 2 {
		t.Errorf("status %+v", st)
	}
	body, err := json.Marshal(map[string]string{"StreamName": "telemetry"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.APIAddr().String()+"/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "WeirGateway_20261125.DescribeGateway")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var desc api.DescribeGatewayOutput
	if err := json.NewDecoder(resp.Body).Decode(&desc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	found := false
	for _, s := range desc.Streams {
		for _, c := range s.Consumers {
			if c.ConsumerName == "forwarder:hook" {
				found = c.Kind == "forwarder" && c.SinkKind == "http" && c.Filtered == 1 && c.Sent == 2
				if !found {
					t.Errorf("DescribeGateway row %+v", c)
				}
			}
		}
	}
	if !found {
		t.Errorf("no forwarder:hook in DescribeGateway: %+v", desc)
	}

	m := promtest.Scrape(t, nil, "http://"+d.APIAddr().String()+"/metrics")
	lbl := []string{"stream", "telemetry", "target_stream", "http:" + backend.URL, "kind", "http", "sink", "hook"}
	m.Want(t, 2, "weir_forwarder_sent_records_total", lbl...)
	m.Want(t, 1, "weir_forwarder_filtered_records_total", lbl...)
}

// A reload matches sinks by stream and name and compares their slices
// (headers, filters) without panicking.
func TestDiffForwardersWithSinks(t *testing.T) {
	hook := forwarder.Config{Stream: "telemetry", Kind: forwarder.KindHTTP, Name: "hook",
		HTTP: forwarder.HTTPConfig{URL: "https://h/x", Headers: []forwarder.Header{{Name: "X-A", Value: "1"}}}}
	changed := hook
	changed.HTTP.Headers = []forwarder.Header{{Name: "X-A", Value: "2"}}
	changed.Filter.Topics = []string{"a/#"}
	kin := forwarder.Config{Stream: "telemetry", TargetStream: "hook", Region: "r"} // same checkpoint name, other kind
	cs := diffForwarders([]forwarder.Config{hook}, []forwarder.Config{changed})
	if len(cs) != 1 || !strings.Contains(cs[0].Note, "restarted") {
		t.Fatalf("changed headers: %+v", cs)
	}
	if cs := diffForwarders([]forwarder.Config{hook}, []forwarder.Config{hook}); len(cs) != 0 {
		t.Fatalf("unchanged: %+v", cs)
	}
	if cs := diffForwarders([]forwarder.Config{hook}, []forwarder.Config{kin}); len(cs) != 1 || !strings.Contains(cs[0].Note, "restarted") {
		t.Fatalf("same checkpoint, other kind: %+v", cs)
	}
}
