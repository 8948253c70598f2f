package shards

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
)

// benchAppend drives 100 concurrent producers (as 100 MQTT connections
// would) into a 4-shard stream and reports appends/s.
func benchAppend(b *testing.B, cfg StreamConfig) {
	s, err := Open(b.TempDir(), Options{Streams: []StreamConfig{cfg}, NoRetentionLoop: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 200)
	var n atomic.Int64
	b.SetBytes(200)
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := 0; p < 100; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("dev-%03d", p)
			for n.Add(1) <= int64(b.N) {
				if _, err := s.Append(context.Background(), cfg.Name, &Record{Key: key, Data: payload}, AppendOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// The cost of rate limiting when no limit is hit: compare the two
// sub-benchmarks of one run (issue 3: within 5%).
func BenchmarkAppendRateLimit(b *testing.B) {
	b.Run("limits=off", func(b *testing.B) { benchAppend(b, testStream("s", 4)) })
	b.Run("limits=on-not-hit", func(b *testing.B) {
		c := testStream("s", 4)
		c.Rate = RateConfig{RecordsPerSec: 10_000_000, BytesPerSec: 10 * conf.GiB, OnLimit: OnLimitBackpress, MaxWait: conf.Duration(time.Second)}
		benchAppend(b, c)
	})
}

// BenchmarkRetentionStall measures append latency p99 while retention
// deletes segments, against the same load without deletion (issue 3:
// within 2x).
func BenchmarkRetentionStall(b *testing.B) {
	for _, withRetention := range []bool{false, true} {
		b.Run(fmt.Sprintf("retention=%v", withRetention), func(b *testing.B) {
			clk := newFakeClock()
			cfg := testStream("s", 4)
			cfg.SegmentSize = 64 << 10
			cfg.MaxRecordSize = 4 << 10
			cfg.Retention = conf.Duration(time.Second)
			s, err := Open(b.TempDir(), Options{Streams: []StreamConfig{cfg}, NoRetentionLoop: true, Clock: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			payload := make([]byte, 200)
			stop := make(chan struct{})
			var passes atomic.Int64
			if withRetention {
				go func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						clk.Add(100 * time.Millisecond)
						s.EnforceRetention()
						passes.Add(1)
						time.Sleep(time.Millisecond)
					}
				}()
			}
			lat := make([][]time.Duration, 50)
			var n atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range lat {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := fmt.Sprintf("dev-%03d", p)
					for n.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if _, err := s.Append(context.Background(), "s", &Record{Key: key, Data: payload}, AppendOptions{}); err != nil {
							b.Error(err)
							return
						}
						lat[p] = append(lat[p], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			close(stop)
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
			b.ReportMetric(float64(s.Metrics().RetentionDeleted), "deleted")
		})
	}
}

// BenchmarkShardRead reads 200-byte records sequentially from one shard.
func BenchmarkShardRead(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Streams: []StreamConfig{testStream("s", 1)}, NoRetentionLoop: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 100_000
	recs := make([]*Record, 500)
	for i := range recs {
		recs[i] = &Record{Key: "k", Data: make([]byte, 200)}
	}
	for i := 0; i < n/500; i++ {
		for _, r := range recs {
			r.Arrival = 0
		}
		if _, errs := s.AppendBatch(context.Background(), "s", recs, nil); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	b.SetBytes(200)
	b.ResetTimer()
	from := uint64(1)
	for i := 0; i < b.N; {
		got, _, err := sh.Read(from, 10000, 10<<20)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			from = 1
			continue
		}
		i += len(got)
		from = got[len(got)-1].Seq + 1
	}
}
