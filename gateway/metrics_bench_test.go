package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/shards"
)

// BenchmarkMetricsScrape is one /metrics scrape of a gateway with 1,000
// connected MQTT clients, one stream of 16 shards that has records, and
// 4 consumers with checkpoints (BENCHMARKS.md).
func BenchmarkMetricsScrape(b *testing.B) {
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Streams = []shards.StreamConfig{shards.StreamConfig{Name: shards.DefaultStreamName, Shards: 16}.WithDefaults()}
	d, err := Start(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(context.Background())
	for i := range 1000 {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + d.MQTTAddr().String()).
			SetClientID(fmt.Sprintf("dev-%d", i)).SetAutoReconnect(false).SetConnectTimeout(30 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			b.Fatalf("connect %d: %v", i, tok.Error())
		}
		defer c.Disconnect(0)
		if i%10 == 0 {
			if tok := c.Publish("devices/x/telemetry", 1, false, []byte("x")); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				b.Fatal(tok.Error())
			}
		}
	}
	st, _ := d.Store().Stream(shards.DefaultStreamName)
	for c := range 4 {
		if _, err := d.Store().Checkpoints().Register(shards.DefaultStreamName, fmt.Sprintf("c%d", c)); err != nil {
			b.Fatal(err)
		}
		for _, info := range st.Shards() {
			if err := d.Store().Checkpoints().Commit(shards.DefaultStreamName, fmt.Sprintf("c%d", c), info.ID, info.StartSeq); err != nil {
				b.Fatal(err)
			}
		}
	}
	url := "http://" + d.APIAddr().String() + "/metrics"
	var size int
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		size = int(n)
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
