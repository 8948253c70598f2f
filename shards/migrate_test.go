package shards

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyFixture copies testdata/v2-datadir, a data directory written by
// commit 65131d6 (stream.json version 2, a log per shard; see
// testdata/README.md), into a temporary directory.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", "v2-datadir")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// fixtureStream is the stream the fixture was written with.
func fixtureStream() StreamConfig {
	cfg := testStream("s", 2)
	cfg.SegmentSize = 4 << 10
	cfg.MaxRecordSize = 1 << 10
	return cfg
}

// fixtureLasts are the fixture's shards' last indexes, as its generator
// logged them: shard 0 closed by a split at 20, its children 21..25.
var fixtureLasts = map[string]uint64{
	"shardId-000000000000": 20, "shardId-000000000001": 60,
	"shardId-000000000002": 25, "shardId-000000000003": 25,
}

// checkFixtureRecords reads every shard and checks that each key's
// records come in the order they were written, "before-" ones (written
// before the split) then "after-" ones, want in all.
func checkFixtureRecords(t *testing.T, st *Stream, want int) map[string][]Record {
	t.Helper()
	byKey := readAll(t, st)
	total := 0
	for k, recs := range byKey {
		prev := ""
		for _, r := range recs {
			d := string(r.Data)
			if strings.HasPrefix(prev, "after-") && strings.HasPrefix(d, "before-") || (prev != "" && strings.HasPrefix(prev[:6], d[:6]) && d <= prev) {
				t.Fatalf("key %s: %q after %q", k, d, prev)
			}
			prev = d
		}
		total += len(recs)
	}
	if total != want {
		t.Fatalf("read %d records, want %d", total, want)
	}
	return byKey
}

// TestMigrateVersion2DataDir: a data directory written before one log per
// stream (version 2: a log per shard, a closed parent among them) opens
// without losing or renumbering a record: every record reads back with
// its sequence number, a consumer's checkpoint stays valid, new records
// get numbers after every old one in their shard, and it all survives a
// reopen.
func TestMigrateVersion2DataDir(t *testing.T) {
	dir := copyFixture(t)
	cfg := fixtureStream()
	s := openStore(t, dir, Options{Streams: []StreamConfig{cfg}})
	st, _ := s.Stream("s")

	m, err := readMeta(st.dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 3 || m.LogStart != 61 {
		t.Fatalf("stream.json version %d, log start %d; want 3 and 61", m.Version, m.LogStart)
	}
	for _, sm := range m.Shards {
		if sm.LegacyLast != fixtureLasts[sm.ID] {
			t.Fatalf("%s: legacy_last %d, want %d", sm.ID, sm.LegacyLast, fixtureLasts[sm.ID])
		}
	}
	for id, last := range fixtureLasts {
		sh, _ := st.Shard(id)
		if got := sh.Last(); got != last {
			t.Fatalf("%s: Last %d, want %d", id, got, last)
		}
	}
	checkFixtureRecords(t, st, 90)

	// The consumer's checkpoint (shard 1 at 10) still names its place.
	pos, err := s.Checkpoints().Get("s", "app")
	if err != nil || pos["shardId-000000000001"] != 10 {
		t.Fatalf("checkpoint %v, %v", pos, err)
	}
	sh1, _ := st.Shard("shardId-000000000001")
	recs, next, err := sh1.Read(11, 1000, 1<<20)
	if err != nil || len(recs) != 50 || recs[0].Seq != 11 || next != 61 {
		t.Fatalf("shard 1 from its checkpoint: %d records from %v, next %d, %v", len(recs), recs[0].Seq, next, err)
	}

	// New records go to the stream's log, after every old number.
	var added []Appended
	for i := range 12 {
		added = append(added, put(t, s, "s", fmt.Sprintf("k%d", i%6), fmt.Sprintf("after-%03d-new", 100+i)))
	}
	for _, a := range added {
		if a.Seq <= 60 || a.Seq <= fixtureLasts[a.ShardID] {
			t.Fatalf("new record %+v numbered inside the old range", a)
		}
	}
	recs, _, err = sh1.Read(11, 1000, 1<<20) // across the old log into the new
	if err != nil || len(recs) != 50 {
		t.Fatalf("shard 1 reads %d records in its old log first, %v", len(recs), err)
	}
	recs, _, err = sh1.Read(61, 1000, 1<<20)
	if err != nil || len(recs) == 0 || recs[0].Seq <= 60 {
		t.Fatalf("shard 1's new records: %d, %v", len(recs), err)
	}
	s.Close()

	s = openStore(t, dir, Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	st, _ = s.Stream("s")
	checkFixtureRecords(t, st, 102)
	if _, err := os.Stat(filepath.Join(st.dir, "shardId-000000000001")); err != nil {
		t.Fatalf("the old log of shard 1 is gone before retention emptied it: %v", err)
	}
}

// TestMigrationCrashRedone: a migration cut before stream.json version 3
// was written leaves a log directory beside version 2's map; the next
// open removes it (it never took a record) and migrates again.
func TestMigrationCrashRedone(t *testing.T) {
	dir := copyFixture(t)
	logDir := filepath.Join(dir, "streams", "s", logName)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir, "00000000000000000061.seg"), []byte("half-made"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, Options{Streams: []StreamConfig{fixtureStream()}})
	defer s.Close()
	st, _ := s.Stream("s")
	checkFixtureRecords(t, st, 90)
	if a := put(t, s, "s", "k1", "after-200-new"); a.Seq != 61 {
		t.Fatalf("first record after the migration numbered %d, want 61", a.Seq)
	}
}

// TestMigratedLegacyLogsExpire: retention deletes the old per-shard logs
// like any other data, counts what a consumer had not read, tells a
// reader how many of its shard's records went, and removes each old
// log's directory once it is empty.
func TestMigratedLegacyLogsExpire(t *testing.T) {
	dir := copyFixture(t)
	clk := newFakeClock()
	clk.ns.Store(time.Now().Add(48 * time.Hour).UnixNano()) // every fixture record is past the 24 h retention
	s := openStore(t, dir, Options{Streams: []StreamConfig{fixtureStream()}, Clock: clk.Now})
	defer s.Close()
	st, _ := s.Stream("s")
	h := MaxHashKey // shard 1's half, whose old log the consumer read up to 10
	a, err := s.Append(context.Background(), "s", &Record{Key: "k1", Data: []byte("after-300-young")}, AppendOptions{ExplicitHashKey: &h})
	if err != nil || a.ShardID != "shardId-000000000001" {
		t.Fatalf("append: %+v, %v", a, err)
	}
	s.EnforceRetention()
	s.EnforceRetention()
	for id := range fixtureLasts {
		if _, err := os.Stat(filepath.Join(st.dir, id)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: emptied old log still on disk (%v)", id, err)
		}
	}
	// The consumer had read shard 1 up to 10: 50 of its records went unread.
	if lost := s.Checkpoints().Lost("s", "app"); lost < 50 {
		t.Fatalf("consumer lost %d records, want at least shard 1's 50 unread ones", lost)
	}
	sh, _ := st.Shard(a.ShardID)
	var te *TrimmedError
	if _, _, err := sh.Read(11, 10, 1<<20); !errors.As(err, &te) || te.Lost != fixtureLasts[a.ShardID]-10 {
		t.Fatalf("read of a deleted old position: %v (%+v)", err, te)
	}
	recs, _, err := sh.Read(sh.TrimHorizon(), 10, 1<<20)
	if err != nil || len(recs) != 1 || recs[0].Seq != a.Seq {
		t.Fatalf("after the old logs went: %+v, %v; want the young record %d", recs, err, a.Seq)
	}
	s.Close()
	s = openStore(t, dir, Options{Streams: []StreamConfig{fixtureStream()}, Clock: clk.Now})
	defer s.Close()
	st, _ = s.Stream("s")
	if sh, _ := st.Shard(a.ShardID); sh.Last() != a.Seq {
		t.Fatalf("reopened without the old logs: Last %d, want %d", sh.Last(), a.Seq)
	}
}
