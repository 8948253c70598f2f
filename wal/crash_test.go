package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCrashKeepsAcknowledged cuts the power (memFS.crash) at random moments
// while writers append with SyncAlways across frequent segment rolls, then
// recovers the image: Open must succeed, every record acknowledged before
// the cut must be there, and nothing that was never appended may appear.
func TestCrashKeepsAcknowledged(t *testing.T) {
	for round := range 30 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			crashRound(t, uint64(round), SyncAlways, false)
		})
	}
}

// TestCrashWithRecycling: as TestCrashKeepsAcknowledged, with retention
// deleting segments all the while, so that cuts also land while a deleted
// segment's file is renamed free, reused (header rewritten over its stale
// frames) and renamed into place, and while footers are written.
func TestCrashWithRecycling(t *testing.T) {
	reused := 0
	for round := range 30 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			if crashRound(t, 2000+uint64(round), SyncAlways, true).Recycled > 0 {
				reused++
			}
		})
	}
	if reused < 15 {
		t.Fatalf("a file was reused before the cut in only %d of 30 rounds", reused)
	}
}

// TestCrashIntervalRecovers: with SyncInterval a cut may lose acknowledged
// records, but recovery must still succeed without garbage.
func TestCrashIntervalRecovers(t *testing.T) {
	for round := range 10 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			crashRound(t, 1000+uint64(round), SyncInterval, round%2 == 0)
		})
	}
}

func crashRound(t *testing.T, seed uint64, mode SyncMode, retention bool) Stats {
	return crashRoundSized(t, seed, mode, retention, MinSegmentSize)
}

// TestCrashWithPadding: as TestCrashWithRecycling, with segments of 16
// pages, so that writes end in padding mid-segment (FORMAT.md,
// "Padding") and cuts land in and after them, in fresh and in reused
// files, where stale frames follow the padding.
func TestCrashWithPadding(t *testing.T) {
	padded := 0
	for round := range 30 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			if crashRoundSized(t, 3000+uint64(round), SyncAlways, round%3 != 0, 64<<10).PadBytes > 0 {
				padded++
			}
		})
	}
	if padded < 15 {
		t.Fatalf("a write ended in padding before the cut in only %d of 30 rounds", padded)
	}
}

func crashRoundSized(t *testing.T, seed uint64, mode SyncMode, retention bool, segSize int64) Stats {
	rng := rand.New(rand.NewPCG(seed, 42))
	fsys := newMemFS()
	opts := Options{Name: "crash", SegmentSize: segSize, Sync: mode, FS: fsys}
	const dir = "/wal"
	l := mustOpen(t, dir, opts)

	type ack struct {
		idx     uint64
		payload string
	}
	var mu sync.Mutex
	var acked []ack
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := rand.New(rand.NewPCG(seed, uint64(w)))
			for seq := 0; !stop.Load(); seq++ {
				n := 1 + wr.IntN(3)
				batch := make([][]byte, n)
				for i := range batch {
					batch[i] = []byte(fmt.Sprintf("w%d/s%d/r%d/%s", w, seq, i, strings.Repeat("x", wr.IntN(300))))
				}
				first, err := l.AppendBatch(context.Background(), batch)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				for i, p := range batch {
					acked = append(acked, ack{first + uint64(i), string(p)})
				}
				mu.Unlock()
			}
		}()
	}
	var horizon atomic.Uint64 // the highest index retention was asked to delete below
	if retention {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if last := l.LastIndex(); last > 30 {
					h := last - 30
					if h > horizon.Load() {
						horizon.Store(h)
					}
					if _, err := l.TruncateFront(h); err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("TruncateFront: %v", err)
						return
					}
				}
				runtime.Gosched()
			}
		}()
	}
	target := 20 + rng.IntN(400)
	if retention {
		target = 200 + rng.IntN(800) // several deletions and reuses first
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= target })
	mu.Lock()
	before := append([]ack(nil), acked...) // acknowledged before the cut
	mu.Unlock()
	image := fsys.crash(rng)
	stop.Store(true)
	wg.Wait()
	stats := l.Stats()
	closeLog(t, l)

	opts.FS = image
	r, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open after power cut: %v", err)
	}
	defer closeLog(t, r)
	if mode != SyncAlways {
		before = nil // acknowledged before a sync: may be lost by design
	}
	if h := horizon.Load(); r.FirstIndex() > max(h, 1) {
		t.Fatalf("FirstIndex %d after the cut, retention deleted only below %d", r.FirstIndex(), h)
	}
	for _, a := range before {
		if a.idx < r.FirstIndex() {
			continue // deleted by retention
		}
		p, err := r.Read(a.idx)
		if err != nil || string(p) != a.payload {
			t.Fatalf("acknowledged record %d lost: got %q, %v; want %q", a.idx, p, err, a.payload)
		}
	}
	// Every surviving record is one that was appended: no garbage.
	_, err = r.ReadFrom(r.FirstIndex(), 0, 0, func(i uint64, p []byte) error {
		if !strings.HasPrefix(string(p), "w") || !strings.Contains(string(p), "/s") {
			return fmt.Errorf("record %d is garbage: %q", i, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The recovered log keeps working.
	appendN(t, r, 5, 10)
	return stats
}

// FuzzOpen feeds Open a newest segment of arbitrary bytes behind a valid
// header: it must never panic, and whatever it accepts must read back.
func FuzzOpen(f *testing.F) {
	valid := encodeSegHeader(1, 0)
	for i := range 5 {
		valid = appendFrame(valid, uint64(1+i), payloadFor(i, 10*i))
	}
	f.Add(valid[segHeaderSize:])
	// Padding between writes, then stale bytes after the last one.
	padded := appendPadFrame(valid[:len(valid):len(valid)], 6, 4096-len(valid)%4096)
	padded = appendFrame(padded, 6, payloadFor(6, 40))
	padded = appendPadFrame(padded, 7, 4096-len(padded)%4096)
	f.Add(append(padded[segHeaderSize:], appendFrame(nil, 3, payloadFor(3, 30))...))
	f.Add(make([]byte, 100))
	f.Add([]byte("garbage that is not a frame at all"))
	torn := append([]byte(nil), valid[segHeaderSize:len(valid)-3]...)
	f.Add(torn)
	f.Fuzz(func(t *testing.T, body []byte) {
		fsys := newMemFS()
		const dir = "/fuzz"
		h, _ := fsys.OpenFile(dir+"/"+segmentName(1), os.O_CREATE|os.O_RDWR, 0o644)
		h.WriteAt(append(encodeSegHeader(1, 0), body...), 0)
		// Small segments and no scrub: a torn tail is sealed and the next
		// append makes a new segment, which must not zero-fill 16 MiB per input.
		l, err := Open(dir, Options{Name: "fuzz", FS: fsys, SegmentSize: 64 << 10, ScrubRate: -1})
		if err != nil {
			return
		}
		defer l.Close()
		n := 0
		if _, err := l.ReadFrom(1, 0, 0, func(uint64, []byte) error { n++; return nil }); err != nil {
			t.Fatalf("accepted log does not read back: %v", err)
		}
		if uint64(n) != l.LastIndex() {
			t.Fatalf("read %d records, LastIndex %d", n, l.LastIndex())
		}
		if _, err := l.Append(context.Background(), []byte("after")); err != nil {
			t.Fatalf("append to recovered log: %v", err)
		}
	})
}

// FuzzOpenSealed gives Open a sealed segment whose footer and trailer are
// arbitrary bytes, before a valid newest segment: it must never panic,
// and a log it opens must read back every record or report
// *CorruptionError, never return a wrong record.
// lane0 is the lane table of a segment of count records from first, all
// in lane 0, whose frames end at end.
func lane0(first, count uint64, end int64) laneStats {
	return laneStats{{count: count, bytes: end - segHeaderSize, first: first, last: first + count - 1}}
}

func FuzzOpenSealed(f *testing.F) {
	const n = 40
	body := encodeSegHeader(1, 0)
	var offs []uint32
	for i := range n {
		if i%indexStride == 0 {
			offs = append(offs, uint32(len(body)))
		}
		body = appendFrame(body, uint64(1+i), payloadFor(1+i, 20))
	}
	crc := crc32.Checksum(body, castagnoli)
	lanes := lane0(1, n, int64(len(body)))
	f.Add(sealTail(newFooter(1, n, offs, tagRange{}, lanes, crc), int64(len(body))))
	f.Add(sealTail(newFooter(1, n-1, offs, tagRange{}, lanes, crc), int64(len(body))))
	v2 := newFooter(1, n, offs, tagRange{}, nil, crc)
	v2.flags &^= footerLanes // as version 2 wrote it: no lane table
	f.Add(sealTail(v2, int64(len(body))))
	split := newFooter(1, n, offs, tagRange{}, laneStats{{lane: 1, count: 1, first: 1, last: 1, bytes: 32}, {lane: 2, count: n - 1, first: 2, last: n, bytes: int64(len(body)) - 64}}, crc)
	f.Add(sealTail(split, int64(len(body))))
	f.Add([]byte("weirftr\x00 not a footer"))
	f.Fuzz(func(t *testing.T, tail []byte) {
		fsys := newMemFS()
		const dir = "/fuzz"
		h, _ := fsys.OpenFile(dir+"/"+segmentName(1), os.O_CREATE|os.O_RDWR, 0o644)
		h.WriteAt(append(slices.Clone(body), tail...), 0)
		h2, _ := fsys.OpenFile(dir+"/"+segmentName(n+1), os.O_CREATE|os.O_RDWR, 0o644)
		h2.WriteAt(encodeSegHeader(n+1, 0), 0)
		l, err := Open(dir, Options{Name: "fuzz", FS: fsys, SegmentSize: 64 << 10, ScrubRate: -1})
		if err != nil {
			return
		}
		defer l.Close()
		verr := l.Verify()
		var ce *CorruptionError
		if verr != nil && !errors.As(verr, &ce) {
			t.Fatalf("Verify: %v", verr)
		}
		for i := uint64(1); i <= n; i++ {
			p, err := l.Read(i)
			if err != nil {
				if !errors.As(err, &ce) {
					t.Fatalf("Read(%d): %v", i, err)
				}
				continue
			}
			if !bytes.Equal(p, payloadFor(int(i), 20)) {
				t.Fatalf("Read(%d) returned a wrong record", i)
			}
		}
	})
}
