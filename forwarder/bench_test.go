package forwarder

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/integration/kinesalite"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// benchStore fills a fresh store with perKey records of each key (size
// bytes of data each), round robin, and returns them in write order.
func benchStore(b *testing.B, keys []string, perKey, size int) (*shards.Store, []*shards.Record) {
	b.Helper()
	store, err := shards.Open(b.TempDir(), shards.Options{Logger: zerolog.Nop(), Streams: []shards.StreamConfig{unlimitedStream(4)},
		Durability: shards.Durability{Fsync: shards.FsyncInterval, Interval: conf.Duration(10 * time.Millisecond)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	var all []*shards.Record
	for n := range perKey {
		for _, k := range keys {
			d := make([]byte, size)
			copy(d, payload(k, n))
			all = append(all, &shards.Record{Key: k, Data: d})
		}
	}
	// Large batches: each AppendBatch waits for a group commit.
	for i := 0; i < len(all); i += 2000 {
		_, errs := store.AppendBatch(context.Background(), "telemetry", all[i:min(i+2000, len(all))], nil)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return store, all
}

func benchTarget(b *testing.B, up *kinesis.Client, prefix string, n int) string {
	b.Helper()
	name := fmt.Sprintf("%s-%d", prefix, rand.IntN(1e9))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kinesalite.CreateStream(ctx, up, name, n); err != nil {
		b.Fatal(err)
	}
	return name
}

// forwardAll runs a forwarder over the store until every record is
// acknowledged, and returns how long that took.
func forwardAll(b *testing.B, store *shards.Store, ep, target string, aggregate bool, total int64) time.Duration {
	b.Helper()
	cfg := Config{Stream: "telemetry", TargetStream: target, Region: kinesalite.Region, Endpoint: ep,
		MaxInFlight: 4, Linger: conf.Duration(10 * time.Millisecond), RequestTimeout: conf.Duration(10 * time.Second), Aggregate: aggregate}
	f, err := Open(context.Background(), cfg, store, Options{Logger: zerolog.Nop(),
		LoadOptions: []func(*config.LoadOptions) error{config.WithCredentialsProvider(kinesalite.Credentials)}})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	for f.Lag().Sent < total {
		time.Sleep(time.Millisecond)
		if time.Since(t0) > 5*time.Minute {
			b.Fatalf("forwarding stalled: %+v", f.Lag())
		}
	}
	d := time.Since(t0)
	f.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return d
}

// bareLoop sends recs in PutRecords calls of 500 with `workers` loops,
// ignoring order and retrying only what failed.
func bareLoop(b *testing.B, up *kinesis.Client, target string, recs []*shards.Record, workers int) time.Duration {
	b.Helper()
	var batches [][]types.PutRecordsRequestEntry
	for i := 0; i < len(recs); i += maxBatchRecords {
		var batch []types.PutRecordsRequestEntry
		for _, r := range recs[i:min(i+maxBatchRecords, len(recs))] {
			batch = append(batch, types.PutRecordsRequestEntry{PartitionKey: aws.String(r.Key), Data: r.Data})
		}
		batches = append(batches, batch)
	}
	work := make(chan []types.PutRecordsRequestEntry, len(batches))
	for _, bt := range batches {
		work <- bt
	}
	close(work)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bt := range work {
				for len(bt) > 0 {
					out, err := up.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(target), Records: bt})
					if err != nil {
						b.Error(err)
						return
					}
					var again []types.PutRecordsRequestEntry
					for i, r := range out.Records {
						if r.ErrorCode != nil {
							again = append(again, bt[i])
						}
					}
					bt = again
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

// BenchmarkForwardKinesalite forwards 20,000 records of 1,000 keys (200
// bytes each) from a real store into kinesalite, and in the same run sends
// the same records with a bare loop of 500-record PutRecords calls that
// ignores order (one loop, and four in parallel like the forwarder's
// max_in_flight). ratio = forwarder throughput / bare loop throughput.
func BenchmarkForwardKinesalite(b *testing.B) {
	ep := kinesaliteEndpoint(b)
	up := kinesalite.NewClient(ep)
	keys := keysN(1000)
	const perKey = 20
	var fwd, bare1, bare4 time.Duration
	var n int
	b.StopTimer()
	// Warm kinesalite's JIT up so that the first measurement is not
	// penalised.
	_, warm := benchStore(b, keys, 5, 200)
	bareLoop(b, up, benchTarget(b, up, "bench-warm", 4), warm, 1)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store, recs := benchStore(b, keys, perKey, 200)
		target := benchTarget(b, up, "bench-fwd", 4)
		bares := func() {
			bare1 += bareLoop(b, up, benchTarget(b, up, "bench-bare", 4), recs, 1)
			bare4 += bareLoop(b, up, benchTarget(b, up, "bench-bare4", 4), recs, 4)
		}
		if i%2 == 1 { // alternate, so neither side always meets a fuller kinesalite
			bares()
		}
		b.StartTimer()
		fwd += forwardAll(b, store, ep, target, false, int64(len(recs)))
		b.StopTimer()
		if i%2 == 0 {
			bares()
		}
		n += len(recs)
	}
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	b.ReportMetric(rate(fwd), "fwd-rec/s")
	b.ReportMetric(rate(bare1), "bare-rec/s")
	b.ReportMetric(rate(bare4), "bare4-rec/s")
	b.ReportMetric(rate(fwd)/rate(bare1), "ratio")
	b.ReportMetric(rate(fwd)/rate(bare4), "ratio4")
}

// BenchmarkAggregate10Keys forwards 100,000 records of 10 keys (100 bytes
// each) with aggregation on: records per second acknowledged upstream.
func BenchmarkAggregate10Keys(b *testing.B) {
	ep := kinesaliteEndpoint(b)
	up := kinesalite.NewClient(ep)
	keys := keysN(10)
	const perKey = 10_000
	var fwd time.Duration
	var n int
	b.StopTimer()
	_, warm := benchStore(b, keys, 500, 100)
	bareLoop(b, up, benchTarget(b, up, "bench-warm", 4), warm, 1)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store, recs := benchStore(b, keys, perKey, 100)
		target := benchTarget(b, up, "bench-agg", 4)
		b.StartTimer()
		fwd += forwardAll(b, store, ep, target, true, int64(len(recs)))
		b.StopTimer()
		n += len(recs)
	}
	b.ReportMetric(float64(n)/fwd.Seconds(), "rec/s")
}
