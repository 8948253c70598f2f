package integration

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/gateway/consumer"
	"github.com/weir-gateway/weir/shards"
)

// fixtureV1 is testdata/datadir-v1.json: what the v1 gateway answered
// while it wrote testdata/datadir-v1.tar.gz (make-datadir-v1.sh).
type fixtureV1 struct {
	Records []struct {
		ShardId, SequenceNumber, PartitionKey, Data string
	}
}

// TestMigrateV1DataDir opens a data directory written by weir before the
// format bump (stream.json version 1, sequence number format v1) with this
// code: stream.json becomes version 2, every record reads back with v2
// numbers, the old checkpoints resume where they were, v1 numbers are
// accepted up to what each shard held before the migration and refused
// beyond, and another shard's number is refused.
//
// It runs the store and the API in process rather than the weir binary:
// the fixture's records are as old as the fixture, and only a store
// without its retention loop keeps them however long ago that was.
func TestMigrateV1DataDir(t *testing.T) {
	dir := t.TempDir()
	untarGz(t, "testdata/datadir-v1.tar.gz", dir)
	var fx fixtureV1
	b, err := os.ReadFile("testdata/datadir-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}

	kc, hsURL := openMigrated(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// stream.json is version 3 (one log per stream) and records what v1
	// issued per shard and what each shard's own log held, read in place.
	var meta struct {
		Version  int    `json:"version"`
		LogStart uint64 `json:"log_start"`
		Shards   []struct {
			ID         string `json:"id"`
			V1LastSeq  uint64 `json:"v1_last_seq"`
			LegacyLast uint64 `json:"legacy_last"`
		} `json:"shards"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "streams", "fx", "stream.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	wantV1 := map[string]uint64{"shardId-000000000000": 10, "shardId-000000000001": 10, "shardId-000000000002": 15, "shardId-000000000003": 15}
	if meta.Version != 3 || len(meta.Shards) != 4 || meta.LogStart != 16 {
		t.Fatalf("stream.json after migration: %s", b)
	}
	for _, s := range meta.Shards {
		if s.V1LastSeq != wantV1[s.ID] || s.LegacyLast != wantV1[s.ID] {
			t.Errorf("%s: v1_last_seq %d, legacy_last %d, want %d", s.ID, s.V1LastSeq, s.LegacyLast, wantV1[s.ID])
		}
	}

	// Every record reads back, in order, with its v2 number; the v1 number
	// it was given still finds it.
	byShard := map[string][]int{}
	for i, r := range fx.Records {
		byShard[r.ShardId] = append(byShard[r.ShardId], i)
	}
	for shard, idx := range byShard {
		got := readAll(ctx, t, kc, shard, types.ShardIteratorTypeTrimHorizon, "")
		if len(got) != len(idx) {
			t.Fatalf("%s: %d records, want %d", shard, len(got), len(idx))
		}
		for k, i := range idx {
			want := fx.Records[i]
			_, n, err := shards.DecodeSeq(want.SequenceNumber)
			if err != nil {
				t.Fatal(err)
			}
			if seq := aws.ToString(got[k].SequenceNumber); seq != shards.FormatSeq(shard, n) || string(got[k].Data) != want.Data ||
				aws.ToString(got[k].PartitionKey) != want.PartitionKey {
				t.Fatalf("%s record %d: %s %q %q, want %s %q %q", shard, k, seq, got[k].Data, aws.ToString(got[k].PartitionKey),
					shards.FormatSeq(shard, n), want.Data, want.PartitionKey)
			}
			at := readAll(ctx, t, kc, shard, types.ShardIteratorTypeAtSequenceNumber, want.SequenceNumber)
			if len(at) == 0 || string(at[0].Data) != want.Data {
				t.Fatalf("%s: AT_SEQUENCE_NUMBER %s (v1) does not find %q", shard, want.SequenceNumber, want.Data)
			}
		}
	}

	// v1 numbers beyond what a shard held before the migration, and
	// numbers of another shard, are InvalidArgumentException.
	iter := func(shard string, typ types.ShardIteratorType, seq string) error {
		_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("fx"), ShardId: aws.String(shard),
			ShardIteratorType: typ, StartingSequenceNumber: aws.String(seq)})
		return err
	}
	wantInvalid := func(what string, err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidArgumentException" {
			t.Errorf("%s: %v, want InvalidArgumentException", what, err)
		}
	}
	wantInvalid("v1 number beyond shard 1's v1 range", iter("shardId-000000000001", types.ShardIteratorTypeAfterSequenceNumber, "11"))
	wantInvalid("v1 number beyond shard 2's v1 range", iter("shardId-000000000002", types.ShardIteratorTypeAtSequenceNumber, "16"))
	wantInvalid("shard 0's number on shard 1", iter("shardId-000000000001", types.ShardIteratorTypeAtSequenceNumber, shards.FormatSeq("shardId-000000000000", 3)))
	if err := iter("shardId-000000000001", types.ShardIteratorTypeAfterSequenceNumber, "10"); err != nil {
		t.Errorf("the last v1 number of shard 1: %v", err)
	}

	// New records get v2 numbers after the v1 ones, and a v1 number past
	// the migration point stays refused although such a record now exists.
	put, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("fx"), PartitionKey: aws.String("new"),
		ExplicitHashKey: aws.String("200000000000000000000000000000000000000"), Data: []byte("after")})
	if err != nil {
		t.Fatal(err)
	}
	// 16: the stream's log starts after every number any shard issued.
	if aws.ToString(put.ShardId) != "shardId-000000000001" || aws.ToString(put.SequenceNumber) != shards.FormatSeq("shardId-000000000001", 16) {
		t.Fatalf("put after migration: %s %s", aws.ToString(put.ShardId), aws.ToString(put.SequenceNumber))
	}
	wantInvalid("v1 number of a record written after the migration", iter("shardId-000000000001", types.ShardIteratorTypeAtSequenceNumber, "16"))

	// The consumer's old checkpoints (shard 0 at 7, shard 1 at 10, shard 2
	// at 12) resume where they were: it gets shard 0's 8..10, shard 1's
	// new record, shard 2's 13..15 and all of shard 3.
	c, err := consumer.New(consumer.Config{Endpoint: hsURL, Stream: "fx", Name: "app", StopAtEnd: true, Sequential: true, CheckpointEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	if err := c.Run(ctx, func(_ context.Context, r consumer.Record) error {
		mu.Lock()
		got = append(got, string(r.Data))
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range fx.Records {
		switch r.ShardId + " " + r.SequenceNumber {
		case "shardId-000000000000 8", "shardId-000000000000 9", "shardId-000000000000 10",
			"shardId-000000000002 13", "shardId-000000000002 14", "shardId-000000000002 15":
			want = append(want, r.Data)
		}
		if r.ShardId == "shardId-000000000003" {
			want = append(want, r.Data)
		}
	}
	want = append(want, "after")
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	if len(got) != len(want) {
		t.Fatalf("consumer resumed with %q, want %q", got, want)
	}
	for _, w := range want {
		if !seen[w] {
			t.Fatalf("consumer resumed with %q, missing %q", got, w)
		}
	}
}

// openMigrated opens dir with this code's store and serves its API.
func openMigrated(t *testing.T, dir string) (*kinesis.Client, string) {
	t.Helper()
	st, err := shards.Open(dir, shards.Options{NoRetentionLoop: true,
		DefaultStream: shards.StreamConfig{Rate: shards.RateConfig{OnLimit: shards.OnLimitBackpress}}.WithDefaults()})
	if err != nil {
		t.Fatalf("open the v1 data dir: %v", err)
	}
	srv, err := api.New(api.Config{}, st, api.Options{})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		hs.CloseClientConnections()
		hs.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	kc := kinesis.New(kinesis.Options{BaseEndpoint: aws.String(hs.URL), Region: "local", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDMIGRATE", "migratemigratemigrate", "")})
	return kc, hs.URL
}

func readAll(ctx context.Context, t *testing.T, kc *kinesis.Client, shard string, typ types.ShardIteratorType, seq string) []types.Record {
	t.Helper()
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String("fx"), ShardId: aws.String(shard), ShardIteratorType: typ}
	if seq != "" {
		in.StartingSequenceNumber = aws.String(seq)
	}
	it, err := kc.GetShardIterator(ctx, in)
	if err != nil {
		t.Fatalf("%s %s %s: %v", shard, typ, seq, err)
	}
	var out []types.Record
	next := it.ShardIterator
	for next != nil {
		g, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g.Records...)
		if len(g.Records) == 0 {
			break // an open shard's end
		}
		next = g.NextShardIterator
	}
	return out
}

func untarGz(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
	}
}
