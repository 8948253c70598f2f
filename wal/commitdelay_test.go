package wal

import (
	"context"
	"sync"
	"testing"
	"time"
)

// syncsFor runs writers that each append n records one after another (as
// MQTT connections do, one publish in flight each) and returns how many
// fsyncs the log made.
func syncsFor(t *testing.T, delay time.Duration, writers, n int) int64 {
	t.Helper()
	fsys := newFaultFS()
	opts := testOpts(fsys)
	opts.CommitDelay = delay
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()
	before := fsys.syncs.Load()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := l.Append(context.Background(), []byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return fsys.syncs.Load() - before
}

// CommitDelay must make concurrent appenders share fsyncs: fewer syncs for
// the same work than without it.
func TestCommitDelayGroupsConcurrentAppenders(t *testing.T) {
	const writers, n = 16, 40
	without := syncsFor(t, 0, writers, n)
	with := syncsFor(t, 20*time.Millisecond, writers, n)
	t.Logf("%d appends: %d syncs without commit delay, %d with", writers*n, without, with)
	if with*10 > without*9 {
		t.Fatalf("commit delay did not group appends: %d syncs with it, %d without (want at least 10%% fewer)", with, without)
	}
}

// A lone appender never waits for company: its latency stays one fsync,
// far below the delay.
func TestCommitDelayLoneAppenderDoesNotWait(t *testing.T) {
	fsys := newFaultFS()
	opts := testOpts(fsys)
	opts.CommitDelay = 500 * time.Millisecond
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()
	start := time.Now()
	for range 5 {
		if _, err := l.Append(context.Background(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > 400*time.Millisecond {
		t.Fatalf("5 sequential appends took %v with a 500ms commit delay: a lone appender waited", el)
	}
}

// With SyncInterval a record is acknowledged once written, but readers see
// it only once it is synced: no checkpoint can name a record that a power
// cut may take back.
func TestIntervalShowsOnlySyncedRecords(t *testing.T) {
	fsys := newFaultFS()
	opts := testOpts(fsys)
	opts.Sync = SyncInterval
	opts.SyncInterval = time.Hour // the ticker never fires during the test
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()
	idx, err := l.Append(context.Background(), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() >= idx {
		t.Fatalf("record %d visible to readers before any sync (LastIndex %d)", idx, l.LastIndex())
	}
	if _, err := l.Read(idx); err == nil {
		t.Fatal("unsynced record readable")
	}
	if err := l.Seal(); err != nil { // seal syncs
		t.Fatal(err)
	}
	if l.LastIndex() != idx {
		t.Fatalf("after the sync LastIndex is %d, want %d", l.LastIndex(), idx)
	}
}

// Stats counts one group per commit and one sync per group with
// SyncAlways; the segment-preparing syncs of spare files are not the
// shard's commit load and are not counted.
func TestStatsCountGroupsAndSyncs(t *testing.T) {
	fsys := newFaultFS()
	l := mustOpen(t, t.TempDir(), testOpts(fsys))
	defer l.Close()
	before := l.Stats()
	for range 5 {
		if _, err := l.Append(context.Background(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.AppendBatch(context.Background(), [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		t.Fatal(err)
	}
	got := l.Stats()
	if g := got.Groups - before.Groups; g != 6 {
		t.Errorf("groups: %d, want 6 (5 sequential appends and one batch)", g)
	}
	if s := got.Syncs - before.Syncs; s != 6 {
		t.Errorf("syncs: %d, want 6", s)
	}
}
