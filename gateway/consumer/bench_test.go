package consumer

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// BenchmarkConsumerLatency measures append -> delivery latency through the
// gateway API with the Go consumer, at about 10,000 records/s over 4
// shards, with fsync=always and the read limits off. Each op is one record;
// the record carries the time its Append was called, the handler takes the
// difference. Reported: p50/p99/max in ms, the rate achieved, and the p99
// of the Append call alone (the commit's share: a record is readable only
// once committed).
//
// fsync=always is the gateway's default; fsync=interval (10 ms) takes the
// fsync off the commit path and so shows the API and consumer's own share.
func BenchmarkConsumerLatency(b *testing.B) {
	b.Run("fsync=always", func(b *testing.B) { benchLatency(b, shards.Durability{Fsync: shards.FsyncAlways}) })
	b.Run("fsync=interval", func(b *testing.B) { benchLatency(b, shards.Durability{Fsync: shards.FsyncInterval}) })
}

func benchLatency(b *testing.B, d shards.Durability) {
	const (
		rate      = 10_000
		producers = 20
	)
	g := startGateway(b)
	g.stop()
	g.opts.Durability = d.WithDefaults()
	g.start()
	g.createStream("lat", 4)

	var (
		mu   sync.Mutex
		apl  []time.Duration // Append call durations: the commit share of lat
		lat  []time.Duration
		got  = make(chan struct{}, 1)
		want int
	)
	c, r := runConsumer(b, Config{Endpoint: g.endpoint(), Stream: "lat", Name: "bench", WaitMillis: 10000},
		func(_ context.Context, rec Record) error {
			sent := int64(binary.BigEndian.Uint64(rec.Data))
			d := time.Duration(time.Now().UnixNano() - sent)
			mu.Lock()
			lat = append(lat, d)
			n := len(lat)
			mu.Unlock()
			if n == want {
				got <- struct{}{}
			}
			return nil
		})
	_ = c
	defer r.stop(b)
	publish := func(n int) {
		var wg sync.WaitGroup
		per := time.Duration(producers) * time.Second / rate
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := time.Now()
				for i := p; i < n; i += producers {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					next = next.Add(per)
					data := make([]byte, 200)
					t0 := time.Now()
					binary.BigEndian.PutUint64(data, uint64(t0.UnixNano()))
					if _, err := g.store.Append(context.Background(), "lat", &shards.Record{Key: fmt.Sprintf("dev-%d", i%1000), Data: data}, shards.AppendOptions{}); err != nil {
						b.Error(err)
						return
					}
					d := time.Since(t0)
					mu.Lock()
					apl = append(apl, d)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	// Warm up: the consumer has listed the shards and is long-polling.
	mu.Lock()
	want = 100
	mu.Unlock()
	publish(100)
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		b.Fatal("warm-up records not delivered")
	}
	mu.Lock()
	lat, apl = lat[:0], apl[:0]
	want = b.N
	mu.Unlock()

	b.ResetTimer()
	start := time.Now()
	publish(b.N)
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		b.Fatalf("delivered %d of %d", len(lat), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	slices.Sort(apl)
	q := func(d []time.Duration, p float64) float64 { return float64(d[int(p*float64(len(d)-1))]) / 1e6 }
	b.ReportMetric(q(lat, 0.50), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(q(apl, 0.99), "append-p99-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
