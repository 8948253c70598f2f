package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// lanePayload is record k of lane n: recognisable, so a read can be
// checked against the lane and the order it was appended in.
func lanePayload(lane uint16, k int) []byte {
	return fmt.Appendf(nil, "lane-%d-rec-%06d|%s", lane, k, bytes.Repeat([]byte{'a' + byte(lane)}, 40))
}

type deferredDone struct {
	mu  sync.Mutex
	got []error
	wg  *sync.WaitGroup
}

func (d *deferredDone) Committed(_ uint64, err error) {
	d.mu.Lock()
	d.got = append(d.got, err)
	d.mu.Unlock()
	d.wg.Done()
}

// fillLanes appends perLane records to each of lanes lanes at once, each
// lane by its own goroutine and each through a different append method,
// so commit groups mix lanes and every request kind carries its lane.
func fillLanes(t *testing.T, l *Log, lanes, perLane int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, lanes)
	for n := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lane := l.Lane(uint16(n))
			var done sync.WaitGroup
			d := &deferredDone{wg: &done}
			for k := 0; k < perLane; {
				var err error
				switch (n + k) % 4 {
				case 0:
					_, err = lane.Append(ctx, lanePayload(lane.ID(), k))
					k++
				case 1:
					batch := [][]byte{lanePayload(lane.ID(), k)}
					if k+1 < perLane {
						batch = append(batch, lanePayload(lane.ID(), k+1))
					}
					_, err = lane.AppendBatch(ctx, batch)
					k += len(batch)
				case 2:
					done.Add(1)
					if err = lane.AppendDeferred(ctx, lanePayload(lane.ID(), k), d); err != nil {
						done.Done()
					}
					done.Wait() // keep this lane's order: one record in flight
					k++
				default:
					ch := make(chan error, 1)
					if err = lane.AppendAsync(lanePayload(lane.ID(), k), func(_ uint64, err error) { ch <- err }); err == nil {
						err = <-ch
					}
					k++
				}
				if err != nil {
					errs <- fmt.Errorf("lane %d record %d: %w", n, k, err)
					return
				}
			}
			for _, err := range d.got {
				if err != nil {
					errs <- fmt.Errorf("lane %d deferred: %w", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// checkLanes reads every lane from the log's first index and checks that
// it holds exactly its records, in order, at increasing indexes, and that
// ReadLanes sees every record once, with its lane.
func checkLanes(t *testing.T, l *Log, lanes, perLane int) {
	t.Helper()
	seen := make(map[uint64]uint16)
	for n := range lanes {
		lane := l.Lane(uint16(n))
		k := 0
		var prev uint64
		for from := l.FirstIndex(); from <= l.LastIndex(); {
			next, err := lane.ReadFrom(from, 7, 0, func(i uint64, p []byte) error {
				if !bytes.Equal(p, lanePayload(lane.ID(), k)) {
					return fmt.Errorf("index %d: %q, want %q", i, p, lanePayload(lane.ID(), k))
				}
				if i <= prev {
					return fmt.Errorf("index %d after %d", i, prev)
				}
				if other, dup := seen[i]; dup {
					return fmt.Errorf("index %d in lanes %d and %d", i, other, n)
				}
				seen[i] = lane.ID()
				prev = i
				k++
				return nil
			})
			if err != nil {
				t.Fatalf("lane %d ReadFrom(%d): %v", n, from, err)
			}
			if next <= from {
				t.Fatalf("lane %d ReadFrom(%d) did not advance", n, from)
			}
			from = next
		}
		if k != perLane {
			t.Fatalf("lane %d: read %d records, want %d", n, k, perLane)
		}
	}
	total := 0
	if _, err := l.ReadLanes(l.FirstIndex(), 0, 0, func(i uint64, lane uint16, _ []byte) error {
		if seen[i] != lane {
			return fmt.Errorf("ReadLanes: index %d in lane %d, lane reads put it in %d", i, lane, seen[i])
		}
		total++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if total != lanes*perLane {
		t.Fatalf("ReadLanes saw %d records, want %d", total, lanes*perLane)
	}
}

// TestLanesShareALog: four lanes appended at once through every append
// method come back apart, each in its order, from the active segment,
// from sealed segments after rolls, and again after a reopen (which
// reads the sealed ones by their footers and scans the newest).
func TestLanesShareALog(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts(OSFS())
	l := mustOpen(t, dir, opts)
	fillLanes(t, l, 4, 120)
	if segs := l.Segments(); len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	checkLanes(t, l, 4, 120)
	for n := range uint16(4) {
		if _, _, records, _, ok := l.Lane(n).Stored(); !ok || records != 120 {
			t.Fatalf("lane %d stores %d records", n, records)
		}
	}
	before := l.Segments()
	closeLog(t, l)

	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	// The sealed segments' lane tables come from their footers, the
	// newest's from its frames: both must say what the commits said.
	if after := l.Segments(); !reflect.DeepEqual(after, before) {
		t.Fatalf("segments after reopen:\n%+v\nbefore:\n%+v", after, before)
	}
	checkLanes(t, l, 4, 120)
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	rep, err := VerifyDir(dir, "lanes", nil)
	if err != nil || len(rep.Damage) != 0 || rep.Records != 480 {
		t.Fatalf("VerifyDir: %+v, %v", rep, err)
	}
}

// TestLaneRead: Lane.Read returns the lane's own records and refuses an
// index that holds another lane's record.
func TestLaneRead(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(OSFS()))
	defer closeLog(t, l)
	ctx := context.Background()
	a, b := l.Lane(1), l.Lane(2)
	ia, err := a.Append(ctx, []byte("in a"))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := b.Append(ctx, []byte("in b"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Read(ia); err != nil || string(p) != "in a" {
		t.Fatalf("a.Read(%d) = %q, %v", ia, p, err)
	}
	if _, err := a.Read(ib); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a.Read(b's index %d) = %v, want ErrNotFound", ib, err)
	}
	if _, err := a.Read(ib + 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a.Read past the end = %v, want ErrNotFound", err)
	}
	if p, err := l.Read(ib); err != nil || string(p) != "in b" {
		t.Fatalf("Log.Read(%d) = %q, %v: the log reads every lane", ib, p, err)
	}
}

// TestLaneReadPassesOverABudget: a quiet lane behind megabytes of a busy
// one in the same segment is read in bounded steps: a call that passed
// over laneScanBudget bytes returns no record and a position beyond them,
// and going on from there reaches the record. With small segments the
// lane tables let the read skip the busy lane's segments unread.
func TestLaneReadPassesOverABudget(t *testing.T) {
	for _, tc := range []struct {
		name     string
		segSize  int64
		minCalls int
	}{
		{"one segment", 64 << 20, 3}, // 12 MiB in front, 4 MiB a call
		{"segments of 1 MiB", 1 << 20, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOpts(OSFS())
			opts.SegmentSize = tc.segSize
			l := mustOpen(t, t.TempDir(), opts)
			defer closeLog(t, l)
			ctx := context.Background()
			busy, quiet := l.Lane(1), l.Lane(2)
			start, err := quiet.Append(ctx, []byte("first"))
			if err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("x"), 16<<10)
			batch := make([][]byte, 32) // 512 KiB a batch
			for i := range batch {
				batch[i] = big
			}
			for range 3 * laneScanBudget / (len(batch) * len(big)) {
				if _, err := busy.AppendBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			want, err := quiet.Append(ctx, []byte("finally"))
			if err != nil {
				t.Fatal(err)
			}
			calls, from := 0, start+1
			var got uint64
			for got == 0 {
				calls++
				if calls > 10 {
					t.Fatalf("no record after %d calls", calls)
				}
				next, err := quiet.ReadFrom(from, 10, 0, func(i uint64, p []byte) error {
					if string(p) != "finally" {
						return fmt.Errorf("read %q", p)
					}
					got = i
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if next <= from {
					t.Fatalf("ReadFrom(%d) returned %d: no progress", from, next)
				}
				from = next
			}
			if got != want || calls < tc.minCalls {
				t.Fatalf("read index %d in %d calls, want %d in at least %d", got, calls, want, tc.minCalls)
			}
			first, last, records, size, ok := quiet.Stored()
			if !ok || first != start || last != want || records != 2 || size != frameSize(5)+frameSize(7) {
				t.Fatalf("Stored = %d, %d, %d, %d, %v", first, last, records, size, ok)
			}
			for _, c := range []struct{ from, to, want uint64 }{
				{start, want + 1, 2}, {start + 1, want + 1, 1}, {start, want, 1}, {start + 1, want, 0}, {1, l.LastIndex() + 1, 2},
			} {
				if n, err := quiet.Count(c.from, c.to); err != nil || n != c.want {
					t.Fatalf("Count(%d, %d) = %d, %v; want %d", c.from, c.to, n, err, c.want)
				}
			}
			if n, err := busy.Count(1, l.LastIndex()+1); err != nil || n != uint64(want-start-1) {
				t.Fatalf("busy Count = %d, %v; want %d", n, err, want-start-1)
			}
		})
	}
}

// TestLaneSeal: a sealed lane refuses appends with ErrSealed while the
// other lanes go on; appends queued before the seal are committed; the
// index Seal returns is at or after the lane's last record; Unseal lets
// appends in again.
func TestLaneSeal(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOpts(OSFS()))
	defer closeLog(t, l)
	ctx := context.Background()
	a, b := l.Lane(3), l.Lane(4)
	var wg sync.WaitGroup
	d := &deferredDone{wg: &wg}
	for k := range 20 {
		wg.Add(1)
		if err := a.AppendDeferred(ctx, lanePayload(3, k), d); err != nil {
			t.Fatal(err)
		}
	}
	last, err := a.Seal()
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range d.got {
		if err != nil {
			t.Fatalf("deferred append %d queued before the seal: %v", i, err)
		}
	}
	if _, err := a.Append(ctx, []byte("late")); !errors.Is(err, ErrSealed) {
		t.Fatalf("append to a sealed lane: %v, want ErrSealed", err)
	}
	if err := a.AppendAsync([]byte("late"), func(_ uint64, err error) {
		if !errors.Is(err, ErrSealed) {
			t.Errorf("async append to a sealed lane: %v", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	ib, err := b.Append(ctx, []byte("other lane"))
	if err != nil || ib <= last {
		t.Fatalf("other lane: index %d (seal at %d), %v", ib, last, err)
	}
	var lastA uint64
	if _, err := a.ReadFrom(l.FirstIndex(), 0, 0, func(i uint64, _ []byte) error { lastA = i; return nil }); err != nil {
		t.Fatal(err)
	}
	if lastA == 0 || lastA > last {
		t.Fatalf("lane's last record %d, Seal said %d", lastA, last)
	}
	if err := a.Unseal(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, []byte("again")); err != nil {
		t.Fatalf("append after Unseal: %v", err)
	}
}

// TestSegmentVersion3: new segments say version 3; the version 2 fixture
// (testdata/README.md) opens in place, reads back, continues and reuses.
func TestSegmentVersion3(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOpts(OSFS()))
	appendN(t, l, 3, 10)
	closeLog(t, l)
	b, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := decodeSegHeader(b); err != nil || h.version != 3 {
		t.Fatalf("header %+v, %v: want version 3", h, err)
	}
}

func TestOpenVersion2Fixture(t *testing.T) {
	dir := copyDir(t, "testdata/v2")
	opts := testOpts(newFaultFS())
	l := mustOpen(t, dir, opts)
	checkRecords(t, l, 1, 100, 100)
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify of a version 2 log: %v", err)
	}
	appendN(t, l, 60, 100)
	if removed, err := l.TruncateFront(73); err != nil || len(removed) != 2 {
		t.Fatalf("TruncateFront: %v, %v", removed, err)
	}
	appendN(t, l, 80, 100)
	last := l.LastIndex()
	closeLog(t, l)
	l = mustOpen(t, dir, opts)
	defer closeLog(t, l)
	checkRecords(t, l, 73, last, 100)
	if rep, err := VerifyDir(dir, "v2", nil); err != nil || len(rep.Damage) != 0 || rep.Records != last-72 {
		t.Fatalf("VerifyDir: %+v, %v", rep, err)
	}
}

func closedNow(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestLaneNotify: a lane's channel closes when a record of that lane
// becomes visible, not for another lane's; with SyncInterval only once
// the record is synced, even while the lane keeps writing; Log.Wake and
// Close close every lane's.
func TestLaneNotify(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, t.TempDir(), testOpts(OSFS()))
	a, b := l.Lane(1), l.Lane(2)
	wa, wb := a.Notify(), b.Notify()
	if _, err := b.Append(ctx, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if !closedNow(wb) || closedNow(wa) {
		t.Fatalf("after a record of lane 2: lane 2 woken %v (want true), lane 1 woken %v (want false)", closedNow(wb), closedNow(wa))
	}
	if _, err := a.Append(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if !closedNow(wa) {
		t.Fatal("lane 1 not woken by its own record")
	}
	wa, wb = a.Notify(), b.Notify()
	l.Wake()
	if !closedNow(wa) || !closedNow(wb) {
		t.Fatal("Log.Wake did not wake every lane")
	}
	wa = a.Notify()
	closeLog(t, l)
	if !closedNow(wa) || !closedNow(a.Notify()) {
		t.Fatal("Close did not wake the lanes")
	}

	opts := testOpts(OSFS())
	opts.Sync, opts.SyncInterval = SyncInterval, 300*time.Millisecond // long: no sync between an append and the check after it
	l = mustOpen(t, t.TempDir(), opts)
	defer closeLog(t, l)
	a = l.Lane(1)
	wa = a.Notify()
	if _, err := a.Append(ctx, []byte("written, not synced")); err != nil {
		t.Fatal(err)
	}
	if closedNow(wa) {
		t.Fatal("woken before the record was synced (visible)")
	}
	// The lane keeps writing: a sync must still wake it (a record of an
	// earlier write is visible), not wait for a moment it is idle.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := a.Append(ctx, []byte("more")); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-wa:
	case <-time.After(5 * time.Second):
		t.Fatal("a lane writing without pause was never woken")
	}
	close(stop)
	<-done
}

// TestIntervalShowsOnlyPublishedRecords: with SyncInterval a roll writes
// and syncs a group's first records before the group is entered in the
// segments; the sync ticker must not show them to readers before that,
// or a reader of the last visible index finds no segment holding it.
func TestIntervalShowsOnlyPublishedRecords(t *testing.T) {
	opts := testOpts(OSFS())
	opts.Sync, opts.SyncInterval = SyncInterval, time.Millisecond
	l := mustOpen(t, t.TempDir(), opts)
	defer closeLog(t, l)
	ctx := context.Background()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Groups of several requests, one of which does not fit the
			// rest of a 4 KiB segment: the roll writes the ones before it.
			batch := [][]byte{payloadFor(g, 600), payloadFor(g, 600)}
			for range 300 {
				if _, err := l.Lane(uint16(g)).AppendBatch(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	reads := 0
	for {
		select {
		case <-done:
			if reads == 0 {
				t.Fatal("no record became visible while appending")
			}
			return
		default:
		}
		last := l.LastIndex()
		if last < l.FirstIndex() {
			continue
		}
		if _, err := l.Read(last); err != nil {
			t.Fatalf("Read(LastIndex() = %d): %v", last, err)
		}
		if _, err := l.Lane(1).ReadFrom(last, 1, 0, func(uint64, []byte) error { return nil }); err != nil {
			t.Fatalf("lane ReadFrom(%d): %v", last, err)
		}
		reads++
	}
}
