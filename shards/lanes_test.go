package shards

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
)

// TestShardsShareOneLog: a stream's shards are lanes of one log. Records
// appended to all shards at once come back apart, each shard's in order,
// numbered from one sequence (unique across the stream, increasing in a
// shard, with the other shards' records in the gaps); the counts of a
// shard's records ignore the gaps; one fdatasync serves many shards.
func TestShardsShareOneLog(t *testing.T) {
	cfg := testStream("s", 4)
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	st, _ := s.Stream("s")
	var (
		mu  sync.Mutex
		got = map[string][]Appended{}
		wg  sync.WaitGroup
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				a, err := s.Append(context.Background(), "s", &Record{Key: fmt.Sprintf("key-%d", g), Data: fmt.Appendf(nil, "%d", i)}, AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[a.ShardID] = append(got[a.ShardID], a)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	entries, _ := os.ReadDir(st.dir)
	for _, e := range entries {
		if e.IsDir() && e.Name() != logName {
			t.Fatalf("a shard has a directory of its own: %s", e.Name())
		}
	}
	seen := map[uint64]string{}
	for id, as := range got {
		for _, a := range as {
			if other, dup := seen[a.Seq]; dup {
				t.Fatalf("sequence %d given to %s and %s", a.Seq, other, id)
			}
			seen[a.Seq] = id
		}
	}
	if len(got) < 2 {
		t.Fatalf("16 keys landed in %d shard(s)", len(got))
	}
	for id, as := range got {
		sh, _ := st.Shard(id)
		recs, next, err := sh.Read(sh.TrimHorizon(), 1000, 1<<20)
		if err != nil || len(recs) != len(as) {
			t.Fatalf("%s: read %d records, appended %d (%v)", id, len(recs), len(as), err)
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Seq <= recs[i-1].Seq {
				t.Fatalf("%s: %d after %d", id, recs[i].Seq, recs[i-1].Seq)
			}
		}
		if next <= recs[len(recs)-1].Seq {
			t.Fatalf("%s: next %d not past the last record %d", id, next, recs[len(recs)-1].Seq)
		}
		if n := sh.Records(); n != uint64(len(as)) {
			t.Fatalf("%s: Records %d, want %d", id, n, len(as))
		}
		if n, err := sh.RecordsIn(recs[1].Seq, recs[len(recs)-1].Seq); err != nil || n != uint64(len(as)-2) {
			t.Fatalf("%s: RecordsIn between its second and last = %d, %v; want %d", id, n, err, len(as)-2)
		}
		if sh.Last() != recs[len(recs)-1].Seq {
			t.Fatalf("%s: Last %d, its newest record %d", id, sh.Last(), recs[len(recs)-1].Seq)
		}
	}
	if ls := st.LogStats(); ls.Syncs >= 400 || ls.Syncs == 0 {
		t.Fatalf("%d fdatasyncs for 400 appends from 16 writers over 4 shards", ls.Syncs)
	}
}

// TestReadPassesOverOtherShards: a read of a quiet shard behind megabytes
// of a busy one returns its next record in one call, with next past it;
// a closed shard's read ends at its end, however far the log goes on.
func TestReadPassesOverOtherShards(t *testing.T) {
	cfg := testStream("s", 2)
	cfg.SegmentSize = 64 * conf.MiB
	cfg.MaxRecordSize = 1 * conf.MiB
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}})
	defer s.Close()
	st, _ := s.Stream("s")
	lo, hi := HashKey{}, MaxHashKey
	appendTo := func(h HashKey, data []byte) Appended {
		t.Helper()
		a, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: data}, AppendOptions{ExplicitHashKey: &h})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	first := appendTo(lo, []byte("quiet 1"))
	big := make([]byte, 512<<10)
	for range 24 { // 12 MiB of the busy shard, three lane scan budgets
		appendTo(hi, big)
	}
	second := appendTo(lo, []byte("quiet 2"))
	quiet, _ := st.Shard(first.ShardID)
	recs, next, err := quiet.Read(first.Seq+1, 10, 1<<20)
	if err != nil || len(recs) != 1 || recs[0].Seq != second.Seq || next != second.Seq+1 {
		t.Fatalf("quiet shard after the busy one's records: %d records, next %d, %v; want %d", len(recs), next, err, second.Seq)
	}

	busy, _ := st.Shard(appendTo(hi, []byte("x")).ShardID)
	if err := st.Split(busy.ID(), EvenRanges(4)[3][0]); err != nil {
		t.Fatal(err)
	}
	appendTo(lo, []byte("quiet 3")) // the log goes on past the parent's end
	info := busy.Info()
	recs, next, err = busy.Read(info.EndingSeq()+1, 10, 1<<20)
	if err != nil || len(recs) != 0 || next != info.EndingSeq()+1 {
		t.Fatalf("closed shard read at its end: %d records, next %d (end %d), %v", len(recs), next, info.EndingSeq(), err)
	}
}

// retentionStream is a 2-shard stream of 4 KiB segments with a 1 h
// retention and a clock the test moves.
func retentionStream(t *testing.T) (*fakeClock, *Store, *Stream) {
	t.Helper()
	clk := newFakeClock()
	cfg := testStream("s", 2)
	cfg.Retention = conf.Duration(time.Hour)
	cfg.SegmentSize = 4 << 10
	cfg.MaxRecordSize = 1 << 10
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{cfg}, Clock: clk.Now})
	t.Cleanup(func() { s.Close() })
	st, _ := s.Stream("s")
	return clk, s, st
}

// TestTrimmedCountsTheShardsOwnRecords: a reader whose position retention
// deleted learns how many of its own shard's records went, not how many
// sequence numbers (which include the other shards' records).
func TestTrimmedCountsTheShardsOwnRecords(t *testing.T) {
	clk, s, st := retentionStream(t)
	lo, hi := HashKey{}, MaxHashKey
	var ownLost uint64
	for i := range 200 {
		h := hi
		if i%4 == 0 {
			h, ownLost = lo, ownLost+1
		}
		if _, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: make([]byte, 100)}, AppendOptions{ExplicitHashKey: &h}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(2 * time.Hour)
	s.EnforceRetention()
	s.EnforceRetention()
	sh, _ := st.Shard("shardId-000000000000")
	var te *TrimmedError
	_, _, err := sh.Read(1, 10, 1<<20)
	if !errors.As(err, &te) {
		t.Fatalf("read at 1 after retention: %v", err)
	}
	if te.Lost != ownLost || te.TrimHorizon <= 200 {
		t.Fatalf("TrimmedError %+v: want %d of the shard's records lost, trim horizon past 200", te, ownLost)
	}
	if _, err := os.Stat(filepath.Join(st.dir, logName)); err != nil {
		t.Fatal(err)
	}
}

// TestTrimmedOtherShardsIsNoLoss: a reader past its shard's last record
// whose position retention deleted (it held only other shards' records)
// reads on from what is left, with no error and nothing counted lost.
func TestTrimmedOtherShardsIsNoLoss(t *testing.T) {
	clk, s, st := retentionStream(t)
	lo, hi := HashKey{}, MaxHashKey
	appendTo := func(h HashKey) Appended {
		t.Helper()
		a, err := s.Append(context.Background(), "s", &Record{Key: "k", Data: make([]byte, 100)}, AppendOptions{ExplicitHashKey: &h})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	quiet := appendTo(lo)
	for range 100 {
		appendTo(hi)
	}
	clk.Add(2 * time.Hour)
	s.EnforceRetention()
	s.EnforceRetention()
	young := appendTo(lo)
	sh, _ := st.Shard(quiet.ShardID)
	if first := st.log.FirstIndex(); first <= quiet.Seq+1 {
		t.Fatalf("retention deleted nothing past the quiet shard's record (log starts at %d)", first)
	}
	recs, next, err := sh.Read(quiet.Seq+1, 10, 1<<20)
	if err != nil || len(recs) != 1 || recs[0].Seq != young.Seq || next != young.Seq+1 {
		t.Fatalf("read after the shard's own record, its position deleted: %d records, next %d, %v; want %d", len(recs), next, err, young.Seq)
	}
	var te *TrimmedError
	if _, _, err := sh.Read(quiet.Seq, 10, 1<<20); !errors.As(err, &te) || te.Lost != 1 {
		t.Fatalf("read at the shard's deleted record: %v; want TrimmedError with 1 lost", err)
	}
}
