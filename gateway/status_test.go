package gateway

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/config"
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

func TestMetricsIncludeIngestCounters(t *testing.T) {
	d := startDaemon(t)
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
	resp, err := http.Get("http://" + d.APIAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	for _, want := range []string{
		"\nweir_mqtt_received_total 3\n",
		"\nweir_mqtt_stored_total 3\n",
		"\nweir_mqtt_unrouted_total 0\n",
		"\nweir_mqtt_refused_total{reason=\"quota_exceeded\"} 0\n",
		"\nweir_mqtt_refused_total{reason=\"too_large\"} 0\n",
		"\nweir_mqtt_dropped_qos0_total 0\n",
		"\nweir_mqtt_connections 1\n",
		"\nweir_mqtt_auth_failures_total{reason=\"bad_password\"} 0\n",
		"\nweir_mqtt_refused_total{reason=\"not_authorized\"} 0\n",
		"# TYPE weir_mqtt_received_total counter\n",
		"# TYPE weir_mqtt_connections gauge\n",
		"\nweir_store_appended_records_total 3\n", // the API's own families are still there
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	// Every family is declared once, so a scraper accepts the page.
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(text, -1) {
		if seen[m[1]] {
			t.Errorf("family %s declared twice", m[1])
		}
		seen[m[1]] = true
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}
