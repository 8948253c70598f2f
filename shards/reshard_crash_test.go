package shards

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-gateway/weir/internal/fsutil"
)

// crashFS is the metadata seam that dies at a chosen step: every write
// after the crash point is refused, as if the process had been killed there.
// It passes everything through until a test sets at, so the store can open
// and take data first.
type crashFS struct {
	fsutil.OS
	step, at int
}

var errCrash = errors.New("simulated crash")

func (c *crashFS) tick() error {
	if c.at == 0 {
		return nil
	}
	c.step++
	if c.step >= c.at {
		return errCrash
	}
	return nil
}
func (c *crashFS) WriteTemp(p string, b []byte, perm os.FileMode) error {
	if err := c.tick(); err != nil {
		return err
	}
	return c.OS.WriteTemp(p, b, perm)
}
func (c *crashFS) Rename(a, b string) error {
	if err := c.tick(); err != nil {
		return err
	}
	return c.OS.Rename(a, b)
}
func (c *crashFS) SyncDir(d string) error {
	if err := c.tick(); err != nil {
		return err
	}
	return c.OS.SyncDir(d)
}

// TestCrashDuringSplit stops a split after each step of the shard-map write
// (temp written, renamed, directory synced) and checks that a restart finds
// a consistent map: either the old one with the parent open, or the new one
// with the parent closed at its last record and the children empty, and
// that every acknowledged record is still readable in key order.
func TestCrashDuringSplit(t *testing.T) {
	for at := 1; at <= 4; at++ {
		t.Run(fmt.Sprintf("crash_at_step_%d", at), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testStream("s", 1)
			crash := &crashFS{}
			s := openStore(t, dir, withMetaFS(Options{Streams: []StreamConfig{cfg}}, crash))
			for i := 0; i < 20; i++ {
				put(t, s, "s", fmt.Sprintf("k%d", i%3), fmt.Sprint(i))
			}
			crash.at = at
			st, _ := s.Stream("s")
			err := st.Split("shardId-000000000000", EvenRanges(2)[1][0])
			if at <= 3 && err == nil {
				t.Fatal("split succeeded through a crash")
			}
			s.Close()
			// Leftover temp file from a crash between write and rename.
			if at == 2 {
				if _, err := os.Stat(filepath.Join(dir, "streams", "s", metaFile+".tmp")); err == nil {
					t.Log("temp shard map left behind, as after a real crash")
				}
			}
			s = openStore(t, dir, Options{Streams: []StreamConfig{cfg}})
			defer s.Close()
			st, _ = s.Stream("s")
			infos := st.Shards()
			switch len(infos) {
			case 1:
				if infos[0].Closed {
					t.Fatal("old map but parent closed")
				}
			case 3:
				if !infos[0].Closed || infos[0].EndSeq != 20 || infos[1].StartSeq != 21 || infos[2].StartSeq != 21 {
					t.Fatalf("new map inconsistent: %+v", infos)
				}
			default:
				t.Fatalf("map with %d shards after crash", len(infos))
			}
			// Writes work after recovery and every acknowledged record survived.
			for i := 20; i < 30; i++ {
				put(t, s, "s", fmt.Sprintf("k%d", i%3), fmt.Sprint(i))
			}
			byKey := readAll(t, st)
			total := 0
			for k, recs := range byKey {
				prev := -1
				for _, r := range recs {
					var n int
					fmt.Sscan(string(r.Data), &n)
					if n <= prev {
						t.Fatalf("%s reordered after crash: %d after %d", k, n, prev)
					}
					prev = n
				}
				total += len(recs)
			}
			if total != 30 {
				t.Fatalf("%d records after crash recovery, want 30", total)
			}
			// The shards are lanes of the stream's log: a reshard makes
			// no directory, so a crash leaves none behind.
			entries, _ := os.ReadDir(filepath.Join(dir, "streams", "s"))
			for _, e := range entries {
				if e.IsDir() && e.Name() != logName {
					t.Fatalf("directory %s left after recovery", e.Name())
				}
			}
		})
	}
}

func TestCheckpointsDurableAndAtomic(t *testing.T) {
	dir := t.TempDir()
	crash := &crashFS{}
	s := openStore(t, dir, withMetaFS(Options{Streams: []StreamConfig{testStream("s", 1)}}, crash))
	c := s.Checkpoints()
	if _, err := c.Register("s", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register("s", "app"); !errors.Is(err, ErrConsumerExists) {
		t.Fatalf("second register: %v", err)
	}
	if err := c.Commit("s", "nobody", "shardId-000000000000", 1); !errors.Is(err, ErrConsumerNotFound) {
		t.Fatalf("commit for unregistered consumer: %v", err)
	}
	must(t, c.Commit("s", "app", "shardId-000000000000", 7))
	must(t, c.Commit("s", ForwarderPrefix+"cloud", "shardId-000000000000", 3))
	// A failed commit leaves the previous position, in memory and on disk.
	crash.at = 1
	if err := c.Commit("s", "app", "shardId-000000000000", 9); err == nil {
		t.Fatal("commit succeeded through a crash")
	}
	if got, _ := c.Get("s", "app"); got["shardId-000000000000"] != 7 {
		t.Fatalf("failed commit moved the checkpoint: %v", got)
	}
	s.Close()
	s = openStore(t, dir, Options{Streams: []StreamConfig{testStream("s", 1)}})
	defer s.Close()
	c = s.Checkpoints()
	got, err := c.Get("s", "app")
	if err != nil || got["shardId-000000000000"] != 7 {
		t.Fatalf("after restart: %v %v", got, err)
	}
	fw, _ := c.Get("s", ForwarderPrefix+"cloud")
	if fw["shardId-000000000000"] != 3 {
		t.Fatalf("forwarder watermark lost: %v", fw)
	}
	names := []string{}
	for _, ci := range c.Consumers("s") {
		names = append(names, ci.Name)
	}
	if fmt.Sprint(names) != "[app forwarder:cloud]" {
		t.Fatalf("consumers: %v", names)
	}
	must(t, c.Deregister("s", "app"))
	if _, err := c.Get("s", "app"); !errors.Is(err, ErrConsumerNotFound) {
		t.Fatalf("after deregister: %v", err)
	}
}
