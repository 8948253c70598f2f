package wal

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLanes: what one commit domain for a stream's shards saves
// against a log per shard. 4 shards, 25 appenders each (100 devices), one
// 200-byte record in flight per appender, SyncAlways, the same FS seam
// counting syncs and dirtied pages, the gateway's 1 ms commit delay; "logs" gives each shard its own Log,
// "lanes" gives each a Lane of one Log. Two loads:
//
//   - closed: every appender appends again as soon as its record is
//     committed (saturation);
//   - paced: every appender appends 50 records a second, 5,000 a second in
//     all (the flash-wear fleet of BENCHMARKS.md: 1,000 devices × 5
//     msg/s), so groups are as small as a real fleet makes them.
//
// Reported per record: CPU of the whole process (getrusage), records per
// fdatasync, 4 KiB pages × 4096 per payload byte (the least a block
// device writes), and the commit latency percentiles.
func BenchmarkLanes(b *testing.B) {
	for _, load := range []string{"closed", "paced"} {
		for _, layout := range []string{"logs", "lanes"} {
			b.Run(load+"/"+layout, func(b *testing.B) { benchLanes(b, layout == "lanes", load == "paced") })
		}
	}
}

const (
	benchShards          = 4
	benchPerShard        = 25
	benchPacedPerSec     = 50 // per appender
	benchPacedStartDelay = time.Second / benchPacedPerSec
)

func benchLanes(b *testing.B, lanes, paced bool) {
	fsys := newFaultFS()
	// The gateway's default commit_delay (shards.DefaultCommitDelay).
	opts := Options{Name: "bench", FS: fsys, ScrubRate: -1, CommitDelay: time.Millisecond}
	appenders := make([]func(context.Context, []byte) (uint64, error), benchShards)
	var logs []*Log
	if lanes {
		l, err := Open(b.TempDir(), opts)
		if err != nil {
			b.Fatal(err)
		}
		logs = append(logs, l)
		for i := range appenders {
			appenders[i] = l.Lane(uint16(i)).Append
		}
	} else {
		for i := range appenders {
			l, err := Open(b.TempDir(), opts)
			if err != nil {
				b.Fatal(err)
			}
			logs = append(logs, l)
			appenders[i] = l.Append
		}
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	p := payloadFor(1, 200)
	ctx := context.Background()
	n := benchShards * benchPerShard
	lat := make([][]time.Duration, n)
	var left atomic.Int64
	left.Store(int64(b.N))
	syncs, pages := fsys.syncs.Load(), fsys.pages.Load()
	c0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendTo := appenders[g%benchShards]
			// Paced appenders start spread over one period, as devices
			// that connected at different moments.
			next := time.Now().Add(time.Duration(g) * benchPacedStartDelay / time.Duration(n))
			for left.Add(-1) >= 0 {
				if paced {
					time.Sleep(time.Until(next))
					next = next.Add(time.Second / benchPacedPerSec)
				}
				t0 := time.Now()
				if _, err := appendTo(ctx, p); err != nil {
					b.Error(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu := processCPU() - c0
	syncs, pages = fsys.syncs.Load()-syncs, fsys.pages.Load()-pages
	all := slices.Concat(lat...)
	slices.Sort(all)
	at := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/float64(max(syncs, 1)), "records/sync")
	b.ReportMetric(float64(pages)*4096/float64(b.N*len(p)), "pages/B")
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	if !paced {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	}
}
