package wal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tidwall "github.com/tidwall/wal"
	"golang.org/x/sys/unix"
)

// The matrix of the log benchmarks: records per append call × record size.
var (
	benchBatches = []int{1, 16, 128}
	benchSizes   = []int{200, 1 << 10, 16 << 10}
)

func benchPayloads(batch, size int) [][]byte {
	ps := make([][]byte, batch)
	for i := range ps {
		ps[i] = payloadFor(i, size)
	}
	return ps
}

func reportRecords(b *testing.B, records int) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppend: one appender, SyncAlways, real disk (b.TempDir is on
// the same filesystem as /work here). One op = one Append/AppendBatch =
// one fdatasync.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range benchBatches {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("batch=%d/size=%d", batch, size), func(b *testing.B) {
				l, err := Open(b.TempDir(), Options{Name: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ps := benchPayloads(batch, size)
				ctx := context.Background()
				b.SetBytes(int64(batch * size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if batch == 1 {
						_, err = l.Append(ctx, ps[0])
					} else {
						_, err = l.AppendBatch(ctx, ps)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				reportRecords(b, b.N*batch)
			})
		}
	}
}

// BenchmarkTidwall drives tidwall/wal the way the design card would: same
// records and batches, NoSync=false (one fsync per WriteBatch), default-ish
// 16 MiB segments.
func BenchmarkTidwall(b *testing.B) {
	for _, batch := range benchBatches {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("batch=%d/size=%d", batch, size), func(b *testing.B) {
				tw, err := tidwall.Open(b.TempDir(), &tidwall.Options{NoSync: false, SegmentSize: DefaultSegmentSize})
				if err != nil {
					b.Fatal(err)
				}
				defer tw.Close()
				ps := benchPayloads(batch, size)
				var wb tidwall.Batch
				next := uint64(1)
				b.SetBytes(int64(batch * size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					wb.Clear()
					for _, p := range ps {
						wb.Write(next, p)
						next++
					}
					if err := tw.WriteBatch(&wb); err != nil {
						b.Fatal(err)
					}
				}
				reportRecords(b, b.N*batch)
			})
		}
	}
}

const benchAppenders = 100

// BenchmarkConcurrentAppend: 100 goroutines each appending 200-byte
// records and waiting for each ack, as 100 MQTT connections would. Syncs
// are counted through the FS seam (a wrapper of the real files) to show
// the group size.
func BenchmarkConcurrentAppend(b *testing.B) {
	fsys := newFaultFS()
	l, err := Open(b.TempDir(), Options{Name: "bench", FS: fsys})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	p := payloadFor(1, 200)
	b.SetBytes(200)
	b.ReportAllocs()
	syncs := fsys.syncs.Load()
	b.ResetTimer()
	runAppenders(b, func() error {
		_, err := l.Append(context.Background(), p)
		return err
	})
	b.StopTimer()
	syncs = fsys.syncs.Load() - syncs
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64(b.N)/float64(max(syncs, 1)), "records/sync")
}

// BenchmarkTidwallGroupCommit is the naive prototype from the reference
// notes: the same 100 appenders, one committer goroutine gathering what is
// queued into one tidwall WriteBatch (one fsync) per group.
func BenchmarkTidwallGroupCommit(b *testing.B) {
	tw, err := tidwall.Open(b.TempDir(), &tidwall.Options{NoSync: false, SegmentSize: DefaultSegmentSize})
	if err != nil {
		b.Fatal(err)
	}
	defer tw.Close()
	type req struct {
		p    []byte
		done chan error
	}
	queue := make(chan *req, 4096)
	var committer sync.WaitGroup
	committer.Add(1)
	go func() {
		defer committer.Done()
		var wb tidwall.Batch
		next := uint64(1)
		var group []*req
		for r := range queue {
			group = append(group[:0], r)
		more:
			for {
				select {
				case r, ok := <-queue:
					if !ok {
						break more
					}
					group = append(group, r)
				default:
					break more
				}
			}
			wb.Clear()
			for _, r := range group {
				wb.Write(next, r.p)
				next++
			}
			err := tw.WriteBatch(&wb)
			for _, r := range group {
				r.done <- err
			}
		}
	}()
	p := payloadFor(1, 200)
	pool := sync.Pool{New: func() any { return &req{p: p, done: make(chan error, 1)} }}
	b.SetBytes(200)
	b.ReportAllocs()
	b.ResetTimer()
	runAppenders(b, func() error {
		r := pool.Get().(*req)
		queue <- r
		err := <-r.done
		pool.Put(r)
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.StopTimer()
	close(queue)
	committer.Wait()
}

// runAppenders spreads b.N calls of op over benchAppenders goroutines.
func runAppenders(b *testing.B, op func() error) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	for range benchAppenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkAppendCPU: what one durable append costs the CPU rather than
// the clock (getrusage: user + system time of the whole process per op).
// On a machine whose cores are shared by the broker and its clients, the
// kernel time of fdatasync is what caps ingest throughput, not its
// latency: see BENCHMARKS.md.
func BenchmarkAppendCPU(b *testing.B) {
	for _, sync := range []SyncMode{SyncAlways, SyncInterval} {
		b.Run("sync="+sync.String(), func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Name: "bench", Sync: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			p := payloadFor(0, 200)
			ctx := context.Background()
			b.ResetTimer()
			c0 := processCPU()
			for range b.N {
				if _, err := l.Append(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteAmplification: bytes the log writes per payload byte in a
// steady state where retention deletes segments as fast as they fill (1 MiB
// segments, 4 kept, 16 appenders of 200-byte records, SyncAlways), with
// reuse of deleted segments' files (version 2) and without it
// (RecycleSegments < 0: every segment zero-filled first, as version 1).
// "written/B": bytes passed to write(2) per payload byte; "pages/B": 4 KiB
// pages dirtied between syncs × 4096 per payload byte, the least a block
// device writes (each fdatasync writes its dirty pages whole).
func BenchmarkWriteAmplification(b *testing.B) {
	for _, reuse := range []bool{false, true} {
		name := "zero-fill"
		if reuse {
			name = "reuse"
		}
		b.Run(name, func(b *testing.B) {
			fsys := newFaultFS()
			opts := Options{Name: "bench", SegmentSize: 1 << 20, FS: fsys, ScrubRate: -1}
			if !reuse {
				opts.RecycleSegments = -1
			}
			l, err := Open(b.TempDir(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			p := payloadFor(1, 200)
			perSeg := uint64(opts.SegmentSize / frameSize(len(p)))
			var n atomic.Int64
			w0, p0 := fsys.written.Load(), fsys.pages.Load()
			b.ResetTimer()
			runAppenders(b, func() error {
				if _, err := l.Append(context.Background(), p); err != nil {
					return err
				}
				if n.Add(1)%256 == 0 {
					if last := l.LastIndex(); last > 4*perSeg {
						if _, err := l.TruncateFront(last - 4*perSeg); err != nil {
							return err
						}
					}
				}
				return nil
			})
			b.StopTimer()
			payload := float64(b.N * len(p))
			st := l.Stats()
			b.ReportMetric(float64(fsys.written.Load()-w0)/payload, "written/B")
			b.ReportMetric(float64(fsys.pages.Load()-p0)*4096/payload, "pages/B")
			b.ReportMetric(float64(st.Recycled), "recycled")
			b.ReportMetric(float64(st.Created), "created")
		})
	}
}

// BenchmarkFdatasyncFloor: what one durable acknowledgement costs at the
// least on this disk, with no log around it. One op = a 273-byte pwrite
// (one 200-byte record with its framing) into a preallocated, already
// written file, then fdatasync: the block rewrite every group commit
// pays. It reports the latency percentiles that a paced fleet's ack
// latency cannot go below (BENCHMARKS.md, "The floor under a durable
// ack"), and the CPU of each sync.
func BenchmarkFdatasyncFloor(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 4 << 20
	if _, err := f.Write(make([]byte, size)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	rec := make([]byte, 273)
	lat := make([]time.Duration, 0, b.N)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	off := int64(0)
	for range b.N {
		t0 := time.Now()
		if _, err := f.WriteAt(rec, off); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		if off += int64(len(rec)); off+int64(len(rec)) > size {
			off = 0
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(at(0.5), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime)+syscall.TimevalToNsec(ru1.Stime)) -
		time.Duration(syscall.TimevalToNsec(ru0.Utime)+syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}
