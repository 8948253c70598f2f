package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/internal/promtest"
	"github.com/weir-gateway/weir/shards"
)

func startDaemon(t *testing.T) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	return startDaemonWith(t, cfg)
}

// startDaemonWith starts a daemon on cfg and closes it when the test ends.
func startDaemonWith(t *testing.T, cfg *config.File) *Daemon {
	t.Helper()
	d, err := Start(cfg, zerolog.Nop())
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
	return d
}

// TestMetricsLintAndFamilies scrapes a real daemon (MQTT publishes, a
// forwarder, the API) and checks the page the way Prometheus would: it
// parses (expfmt), promlint finds nothing, every family of the old
// hand-written page is still there under its name, and the new ones are.
func TestMetricsLintAndFamilies(t *testing.T) {
	// The forwarder's upstream is a closed port: it stays in backoff, its
	// families are still reported. Static keys keep the SDK off IMDS.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Forwarders = []forwarder.Config{{Stream: shards.DefaultStreamName, TargetStream: "upstream", Region: "eu-west-1",
		Endpoint: "http://127.0.0.1:1"}}
	d, err := StartWith(cfg, zerolog.Nop(), Options{Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = d.Close(context.Background())
		}
	})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + d.MQTTAddr().String()).SetClientID("dev-1").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for range 3 {
		if tok := c.Publish("devices/dev-1/telemetry", 1, false, []byte(`{"t":21.5}`)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	api := "http://" + d.APIAddr().String()
	req, _ := http.NewRequest(http.MethodPost, api+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ListStreams: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	url := api + "/metrics"
	// The forwarder's first request fails at once (connection refused);
	// wait for it so its histograms have a sample.
	var m promtest.Families
	for deadline := time.Now().Add(10 * time.Second); ; {
		m = promtest.Scrape(t, nil, url)
		if v, _ := m.Value("weir_forwarder_request_duration_seconds"); v > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	probs, err := m.Lint()
	if err != nil || len(probs) > 0 {
		t.Errorf("promlint: %v\n%s", err, strings.Join(probs, "\n"))
	}
	// Every family the hand-written page had, by its old name.
	for _, name := range []string{
		"weir_store_appended_records_total", "weir_store_throttled_records_total", "weir_store_refused_full_records_total",
		"weir_store_retention_deleted_records_total", "weir_store_unread_deleted_records_total", "weir_api_auth_failures_total",
		"weir_stream_bytes", "weir_stream_retention_seconds", "weir_shard_last_sequence", "weir_shard_trim_horizon_sequence",
		"weir_shard_records", "weir_shard_appended_records_total", "weir_stream_commit_groups_total", "weir_stream_syncs_total",
		"weir_shard_bytes", "weir_shard_open", "weir_api_read_records_total", "weir_api_read_bytes_total",
		"weir_api_read_throttled_total", "weir_api_requests_total", "weir_api_put_records_total",
		"weir_mqtt_received_total", "weir_mqtt_stored_total", "weir_mqtt_unrouted_total", "weir_mqtt_refused_total",
		"weir_mqtt_dropped_qos0_total", "weir_mqtt_disconnected_total", "weir_mqtt_connections", "weir_mqtt_auth_failures_total",
		"weir_mqtt_subscribe_denied_total", "weir_mqtt_delivery_denied_total", "weir_mqtt_limit_refused_total",
		"weir_mqtt_retained_messages", "weir_mqtt_retained_bytes",
		"weir_forwarder_lag_records", "weir_forwarder_lag_bytes", "weir_forwarder_lag_seconds", "weir_forwarder_sent_records_total",
		"weir_forwarder_resent_records_total", "weir_forwarder_lost_records_total", "weir_forwarder_filtered_records_total", "weir_forwarder_up",
		// New.
		"weir_build_info", "weir_data_dir_free_bytes", "weir_data_dir_used_bytes", "weir_data_dir_size_bytes", "weir_stream_data_bytes",
		"go_goroutines", "go_memstats_heap_inuse_bytes", "process_open_fds", "process_resident_memory_bytes",
		"process_cpu_seconds_total",
	} {
		if !m.Has(name) {
			t.Errorf("/metrics lacks family %s", name)
		}
	}
	// weir_consumer_* appear once a consumer has a checkpoint; the
	// forwarder's commits one only after a success. Their names are
	// checked by the API's tests.
	if m.Has("weir_api_request_seconds_total") {
		t.Error("the microsecond counter weir_api_request_seconds_total is still served")
	}
	for name, typ := range map[string]string{
		"weir_mqtt_publish_ack_duration_seconds": "histogram", "weir_wal_fdatasync_duration_seconds": "histogram",
		"weir_wal_commit_group_records": "histogram", "weir_forwarder_request_duration_seconds": "histogram",
		"weir_forwarder_batch_records": "histogram", "weir_api_request_duration_seconds": "histogram",
		"weir_mqtt_received_total": "counter", "weir_mqtt_connections": "gauge",
	} {
		if got := m.Type(name); got != typ {
			t.Errorf("%s: type %q, want %s", name, got, typ)
		}
	}
	m.Want(t, 1, "weir_build_info", "version", "1.2.3")
	m.Want(t, 3, "weir_mqtt_received_total")
	m.Want(t, 3, "weir_mqtt_stored_total")
	m.Want(t, 1, "weir_mqtt_connections")
	m.Want(t, 0, "weir_mqtt_refused_total", "reason", "not_authorized")
	m.Want(t, 3, "weir_store_appended_records_total")
	m.Want(t, 1, "weir_api_requests_total", "op", "ListStreams", "code", "OK")
	m.Want(t, 1, "weir_api_request_duration_seconds", "op", "ListStreams")
	m.Want(t, 3, "weir_mqtt_publish_ack_duration_seconds") // one per QoS 1 publish
	m.Want(t, 0, "weir_forwarder_up", "stream", shards.DefaultStreamName, "target_stream", "upstream")
	for _, name := range []string{"weir_wal_fdatasync_duration_seconds", "weir_wal_commit_group_records", "weir_data_dir_free_bytes",
		"weir_data_dir_size_bytes", "weir_forwarder_request_duration_seconds", "weir_forwarder_batch_records"} {
		if v, _ := m.Value(name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	// weir_stream_bytes is what the disk holds: the default stream's log
	// (its four shards share it) preallocated a whole 16 MiB segment for
	// three records.
	if v, _ := m.Value("weir_stream_bytes"); v < 16<<20 {
		t.Errorf("weir_stream_bytes = %v, want the preallocated segment (%d) counted", v, 16<<20)
	}
	if v, _ := m.Value("weir_stream_data_bytes"); v <= 0 || v > 16<<10 {
		t.Errorf("weir_stream_data_bytes = %v, want the three records' few hundred bytes", v)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", m.Text)
	}

	// Close takes every part's collector off the registry: what is left
	// is the daemon's own (Go, process, build, disk).
	c.Disconnect(100)
	closed = true
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fams, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if n := f.GetName(); strings.HasPrefix(n, "weir_") && !strings.HasPrefix(n, "weir_build_") && !strings.HasPrefix(n, "weir_data_dir_") {
			t.Errorf("%s still registered after Close", n)
		}
	}
}

// TestReloadedForwarderKeepsItsMetrics: a reload that changes a
// forwarder (same stream and target, so the same metric labels) builds the
// replacement before it stops the old one; the replacement's collector is
// registered only while it runs, so the reload succeeds and /metrics has
// the forwarder's series once, from the new one.
func TestReloadedForwarderKeepsItsMetrics(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	dir := t.TempDir()
	path := filepath.Join(dir, "weir.yaml")
	file := `data_dir: ` + filepath.Join(dir, "data") + `
mqtt:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
streams:
  - name: telemetry
forwarders:
  - {stream: telemetry, target_stream: up, endpoint: "http://127.0.0.1:9", region: local, linger: %s}
`
	if err := os.WriteFile(path, []byte(fmt.Sprintf(file, "50ms")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, cfg)
	url := "http://" + d.APIAddr().String() + "/metrics"
	lbl := []string{"stream", "telemetry", "target_stream", "up"}
	waitFor(t, "the forwarder's metrics", func() bool { return promtest.Scrape(t, nil, url).Has("weir_forwarder_up") })
	old := d.Forwarders()[0]

	if err := os.WriteFile(path, []byte(fmt.Sprintf(file, "60ms")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if fw := d.Forwarders(); len(fw) != 1 || fw[0] == old || fw[0].Config().Linger.D() != 60*time.Millisecond {
		t.Fatalf("forwarder not replaced: %+v", fw)
	}
	waitFor(t, "the replacement's metrics", func() bool {
		_, ok := promtest.Scrape(t, nil, url).Value("weir_forwarder_up", lbl...)
		return ok
	})
	fams, err := d.Registry().Gather()
	if err != nil {
		t.Fatalf("gather after reload: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == "weir_forwarder_up" && len(f.GetMetric()) != 1 {
			t.Errorf("weir_forwarder_up has %d series after the reload, want 1", len(f.GetMetric()))
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
