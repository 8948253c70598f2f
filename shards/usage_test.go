package shards

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// du is coreutils' count of the blocks allocated under dir, the oracle
// the accounting must agree with.
func du(t *testing.T, dir string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Fatalf("du %s: %v", dir, err)
	}
	n, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatalf("du %s printed %q: %v", dir, out, err)
	}
	return n
}

// waitSpare waits until the stream's log has prepared its next segment
// of size bytes (a spare-*.tmp file), which it does in the background.
func waitSpare(t *testing.T, st *Stream, size int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		m, _ := filepath.Glob(filepath.Join(st.dir, logName, "*.tmp"))
		if len(m) == 1 {
			if fi, err := os.Stat(m[0]); err == nil && fi.Size() == size {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the log never prepared its next segment")
		}
	}
}

// A stream's Bytes are what its files take on disk, preallocated and
// prepared segments included, not the bytes of its records: an empty
// stream already holds a whole segment, and one past half its segment
// holds the next one too. Each number must equal du's. Its shards' Bytes
// split it by their records' bytes.
func TestBytesCountAllocatedSpace(t *testing.T) {
	const seg = 64 << 10
	cfg := testStream("s", 2)
	cfg.SegmentSize, cfg.MaxRecordSize = seg, 8<<10
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	other, _ := st.Shard("shardId-000000000001")

	if b, d := st.Bytes(), st.DataBytes(); b < seg || d >= 1<<10 {
		t.Fatalf("empty stream: Bytes %d, DataBytes %d; want a whole preallocated segment (%d) against a header", b, d, seg)
	}
	if got, want := st.Bytes(), du(t, st.dir); got != want {
		t.Fatalf("empty stream: Bytes %d, du %d", got, want)
	}

	// Past half a segment the log prepares the next one.
	var h HashKey // shard 0 owns the low half of the hash space
	for range 5 {
		if _, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: make([]byte, 8000)}, AppendOptions{ExplicitHashKey: &h}); err != nil {
			t.Fatal(err)
		}
	}
	high := MaxHashKey // in shard 1's half
	if _, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: make([]byte, 1000)}, AppendOptions{ExplicitHashKey: &high}); err != nil {
		t.Fatal(err)
	}
	waitSpare(t, st, seg)
	refreshNow(sh)
	if b, d := st.Bytes(), st.DataBytes(); b < 2*seg || d >= seg {
		t.Fatalf("stream with a spare: Bytes %d, DataBytes %d; want the active and the prepared segment (%d)", b, d, 2*seg)
	}
	if got, want := st.Bytes(), du(t, st.dir); got != want {
		t.Fatalf("stream with a spare: Bytes %d, du %d", got, want)
	}
	if d0, d1 := sh.DataBytes(), other.DataBytes(); d0 < 5*8000 || d1 < 1000 || d1 > 2000 || d0+d1 > st.DataBytes() {
		t.Fatalf("shards' DataBytes %d and %d, stream's %d", d0, d1, st.DataBytes())
	}
	if b0, b1 := sh.Bytes(), other.Bytes(); b0 <= 4*b1 || b0+b1 > st.Bytes() || b0+b1 < st.Bytes()*9/10 {
		t.Fatalf("shards' Bytes %d and %d do not split the stream's %d by their data", b0, b1, st.Bytes())
	}

	// Reopened: the spare is gone, sealed and active segments stay.
	s.Close()
	s = openStore(t, filepath.Dir(filepath.Dir(st.dir)), Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	st, _ = s.Stream("s")
	if got, want := st.Bytes(), du(t, st.dir); got != want || got < seg {
		t.Fatalf("reopened: Bytes %d, du %d (want >= %d)", got, want, seg)
	}
}

// max_bytes caps allocated bytes: a stream refuses records once its
// segments, preallocated and prepared ones included, reach the cap, long
// before its records alone would (counting records, 10 of these would fit
// in 320 KiB; counting what the disk holds, at most 9 do).
func TestMaxBytesCountsAllocatedSpace(t *testing.T) {
	const seg = 64 << 10
	cfg := testStream("s", 1)
	cfg.SegmentSize, cfg.MaxRecordSize, cfg.MaxBytes = seg, 32<<10, 5*seg
	cfg.OnFull = OnFullReject
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	stored := 0
	for ; stored < 20; stored++ {
		_, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: make([]byte, 30<<10)}, AppendOptions{})
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if stored < 4 || stored > 9 {
		t.Fatalf("stored %d records of 30 KiB under max_bytes 320 KiB with 64 KiB segments, want 4..9", stored)
	}
	if b, d := st.Bytes(), st.DataBytes(); b < cfg.MaxBytes.Bytes() || d >= cfg.MaxBytes.Bytes() {
		t.Fatalf("refused at Bytes %d, DataBytes %d; want Bytes >= max_bytes %d > DataBytes", b, d, cfg.MaxBytes.Bytes())
	}
	refreshNow(sh)
	if got, want := st.Bytes(), du(t, st.dir); got != want {
		t.Fatalf("full stream: Bytes %d, du %d", got, want)
	}
}
