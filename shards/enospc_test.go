package shards

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/weir-gateway/weir/wal"
	"golang.org/x/sys/unix"
)

// mountSmallFS mounts a size-limited tmpfs (we run as root on CI and on the
// developers' machines) so the disk really fills up.
func mountSmallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a %s tmpfs for the full-disk test (needs root): %v", size, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// A full disk is a refusal, not a crash and not corruption: appends fail
// with ErrFull, reads keep working, nothing acknowledged is lost, and once
// space is freed the shard accepts data again.
func TestDiskFullRefusesAndRecovers(t *testing.T) {
	fsDir := mountSmallFS(t, "1m")
	// Fill most of the disk with a file we can delete later.
	filler := filepath.Join(fsDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 600<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testStream("s", 1)
	cfg.SegmentSize = 64 << 10
	cfg.MaxRecordSize = 8 << 10
	dataDir := filepath.Join(fsDir, "data")
	s := openStore(t, dataDir, Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	ctx := context.Background()
	var acked []Appended
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		a, err := s.Append(ctx, "s", &Record{Key: "k", Data: []byte(fmt.Sprintf("%04d%s", i, make([]byte, 2000)))}, AppendOptions{})
		switch {
		case err == nil:
			acked = append(acked, a)
		case errors.Is(err, ErrFull):
			full = err
		default:
			t.Fatalf("append %d: want ErrFull on a full disk, got %v", i, err)
		}
	}
	if full == nil {
		t.Fatal("the disk never filled")
	}
	if !errors.Is(full, wal.ErrNoSpace) || !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("a real full disk lost the log's chain: %v", full)
	}
	// Refused again, still cleanly.
	if _, err := s.Append(ctx, "s", &Record{Key: "k", Data: make([]byte, 2004)}, AppendOptions{}); !errors.Is(err, ErrFull) {
		t.Fatalf("second append on full disk: %v", err)
	}
	st, _ := s.Stream("s")
	sh, _ := st.Shard("shardId-000000000000")
	if sh.Err() != nil {
		t.Fatalf("a full disk made the shard fail for good: %v", sh.Err())
	}
	recs, _, err := sh.Read(1, 10000, 64<<20)
	if err != nil || len(recs) != len(acked) {
		t.Fatalf("reads on a full disk: %d records, %v; want %d", len(recs), err, len(acked))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		a, err := s.Append(ctx, "s", &Record{Key: "k", Data: make([]byte, 2000)}, AppendOptions{})
		if err != nil {
			t.Fatalf("append after freeing space: %v", err)
		}
		acked = append(acked, a)
	}
	s.Close()
	s2 := openStore(t, dataDir, Options{Streams: []StreamConfig{cfg}})
	defer s2.Close()
	st2, _ := s2.Stream("s")
	sh2, _ := st2.Shard("shardId-000000000000")
	recs, _, err = sh2.Read(1, 100000, 64<<20)
	if err != nil || len(recs) != len(acked) {
		t.Fatalf("after restart: %d records (%v), %d acknowledged", len(recs), err, len(acked))
	}
	for i, r := range recs {
		if r.Seq != acked[i].Seq {
			t.Fatalf("record %d has seq %d, acked as %d", i, r.Seq, acked[i].Seq)
		}
	}
}
