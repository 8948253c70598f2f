package shards

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per op since cpu0: on a shared
// machine it varies far less than wall time.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// encBenchStore opens a store with one 4-shard stream "s", encrypted or
// not.
func encBenchStore(b *testing.B, encrypted bool, shards int) (*Store, *Stream) {
	keys := b.TempDir()
	writeKey(b, keys, "alias/bench", 7)
	s, err := Open(b.TempDir(), Options{KeysDir: keys, Streams: []StreamConfig{testStream("s", shards)}, NoRetentionLoop: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	st, _ := s.Stream("s")
	if encrypted {
		if err := st.StartEncryption("alias/bench"); err != nil {
			b.Fatal(err)
		}
	}
	return s, st
}

// BenchmarkStreamEncryption compares plain and encrypted streams, each
// pair back to back in one run (BENCHMARKS.md, "Stream encryption"): a
// 200-byte record encoded for the log and decoded from it (the CPU the
// encryption adds, no disk), appended one per call by 100 producers with
// fsync always (the MQTT path), appended in PutRecords-sized batches of
// 500 to one shard, and read back.
func BenchmarkStreamEncryption(b *testing.B) {
	payload := make([]byte, 200)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	modes := []string{"plain", "encrypted"}
	for _, mode := range modes {
		enc := mode == "encrypted"
		b.Run("encode/"+mode, func(b *testing.B) {
			_, st := encBenchStore(b, enc, 1)
			r := &Record{Key: "dev-001", Data: payload, Arrival: 1, Topic: "devices/dev-001/telemetry"}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := st.encode(r); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
	for _, mode := range modes {
		enc := mode == "encrypted"
		b.Run("decode/"+mode, func(b *testing.B) {
			_, st := encBenchStore(b, enc, 1)
			stored, err := st.encode(&Record{Key: "dev-001", Data: payload, Arrival: 1, Topic: "devices/dev-001/telemetry"})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := st.decode(1, stored); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
	for _, mode := range modes {
		enc := mode == "encrypted"
		b.Run("append/"+mode, func(b *testing.B) {
			s, _ := encBenchStore(b, enc, 4)
			var n atomic.Int64
			b.SetBytes(int64(len(payload)))
			cpu0 := cpuTime(b)
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := fmt.Sprintf("dev-%03d", p)
					for n.Add(1) <= int64(b.N) {
						if _, err := s.Append(context.Background(), "s", &Record{Key: key, Data: payload}, AppendOptions{}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			reportCPU(b, cpu0)
		})
	}
	for _, mode := range modes {
		enc := mode == "encrypted"
		b.Run("batch500/"+mode, func(b *testing.B) {
			s, _ := encBenchStore(b, enc, 1)
			recs := make([]*Record, 500)
			for i := range recs {
				recs[i] = &Record{Key: fmt.Sprintf("k%d", i), Data: payload}
			}
			b.SetBytes(int64(len(payload)))
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := 0; i < b.N; i += len(recs) {
				for _, r := range recs {
					r.Arrival = 0
				}
				if _, errs := s.AppendBatch(context.Background(), "s", recs, nil); errs[0] != nil {
					b.Fatal(errs[0])
				}
			}
			reportCPU(b, cpu0)
		})
	}
	for _, mode := range modes {
		enc := mode == "encrypted"
		b.Run("read/"+mode, func(b *testing.B) {
			s, st := encBenchStore(b, enc, 1)
			recs := make([]*Record, 500)
			for i := range recs {
				recs[i] = &Record{Key: "k", Data: payload}
			}
			for range 40 {
				for _, r := range recs {
					r.Arrival = 0
				}
				if _, errs := s.AppendBatch(context.Background(), "s", recs, nil); errs[0] != nil {
					b.Fatal(errs[0])
				}
			}
			sh, _ := st.Shard("shardId-000000000000")
			b.SetBytes(int64(len(payload)))
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i, from := 0, uint64(1); i < b.N; {
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
			reportCPU(b, cpu0)
		})
	}
}
