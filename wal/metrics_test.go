package wal

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// slowSyncFS makes every file sync take at least delay: a stalling SD card
// on cue.
type slowSyncFS struct {
	FS
	delay atomic.Int64 // nanoseconds
}

type slowSyncFile struct {
	File
	fs *slowSyncFS
}

func (f *slowSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{File: file, fs: f}, nil
}

func (f slowSyncFile) Sync() error {
	time.Sleep(time.Duration(f.fs.delay.Load()))
	return f.File.Sync()
}

// slowWarnings returns the "slow fdatasync" lines logged so far.
func slowWarnings(t *testing.T, logs *syncWriter) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, "slow fdatasync") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] != "warn" {
			t.Fatalf("slow fdatasync logged at %v, want warn: %s", m["level"], line)
		}
		out = append(out, m)
	}
	return out
}

// A sync over the threshold is logged at warn, at most once per period,
// and the next line counts the slow syncs that were not logged; every
// timed sync lands in the latency histogram, fast or slow.
func TestSlowSyncWarnsRateLimited(t *testing.T) {
	fsys := &slowSyncFS{FS: OSFS()}
	logs := &syncWriter{}
	m := NewMetrics()
	opts := Options{Name: "s", SegmentSize: 64 << 10, FS: fsys, Logger: logTo(logs), Metrics: m}
	l := mustOpen(t, t.TempDir(), opts)
	defer closeLog(t, l)
	appendOne := func(i int) {
		t.Helper()
		if _, err := l.Append(context.Background(), payloadFor(i, 100)); err != nil {
			t.Fatal(err)
		}
	}

	// Fast syncs against a threshold no healthy disk reaches: silence.
	l.slow.threshold.Store(int64(time.Minute))
	l.slow.every.Store(int64(time.Hour))
	appendOne(1)
	if w := slowWarnings(t, logs); len(w) != 0 {
		t.Fatalf("warned about a fast sync: %v", w)
	}

	// Three slow syncs in one period: one line, for the first.
	const delay, threshold = 5 * time.Millisecond, 2 * time.Millisecond
	fsys.delay.Store(int64(delay))
	l.slow.threshold.Store(int64(threshold))
	for i := 2; i <= 4; i++ {
		appendOne(i)
	}
	w := slowWarnings(t, logs)
	if len(w) != 1 {
		t.Fatalf("%d warnings for 3 slow syncs in one period, want 1: %v", len(w), w)
	}
	if w[0]["slow_syncs"] != 1.0 || w[0]["threshold_ms"] != 2.0 || w[0]["took_ms"].(float64) < 5 || w[0]["wal"] != "s" {
		t.Fatalf("first warning %v, want slow_syncs 1, threshold_ms 2, took_ms >= 5, wal s", w[0])
	}

	// The period over: the next slow sync is logged with the two that
	// were held back.
	l.slow.next.Store(0)
	appendOne(5)
	w = slowWarnings(t, logs)
	if len(w) != 2 || w[1]["slow_syncs"] != 3.0 {
		t.Fatalf("after the period: %v, want a second line with slow_syncs 3", w)
	}

	var h dto.Metric
	if err := m.sync.Write(&h); err != nil {
		t.Fatal(err)
	}
	syncs := l.Stats().Syncs
	if got := h.GetHistogram().GetSampleCount(); got != syncs || syncs < 5 {
		t.Fatalf("histogram holds %d fdatasyncs, the log counted %d (want >= 5)", got, syncs)
	}
	var slow uint64 // samples above the threshold: the four delayed syncs
	for _, b := range h.GetHistogram().GetBucket() {
		if b.GetUpperBound() == 0.001 {
			slow = syncs - b.GetCumulativeCount()
		}
	}
	if slow < 4 {
		t.Fatalf("histogram has %d syncs over 1 ms, want the 4 delayed ones", slow)
	}
}
