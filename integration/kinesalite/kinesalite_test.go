package kinesalite

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestNodeModulesArePinned(t *testing.T) {
	dir, err := NodeModules()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range pinned {
		if got := installedVersion(dir, name); got != want {
			t.Fatalf("%s in %s is %q, want %s", name, dir, got, want)
		}
	}
	out := Node(t, `process.stdout.write(require('kinesalite/package.json').version + ' ' + require('aws-kinesis-agg/package.json').version)`, nil)
	if string(out) != Pinned("kinesalite")+" "+Pinned("aws-kinesis-agg") {
		t.Fatalf("node sees %q", out)
	}
	if _, err := NodeModules("left-pad"); err == nil {
		t.Fatal("an unpinned package was accepted")
	}
}

func put(t *testing.T, c *kinesis.Client, stream string, keys []string, round int) {
	t.Helper()
	var recs []types.PutRecordsRequestEntry
	for _, k := range keys {
		recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: []byte(fmt.Sprintf("%s/%d", k, round))})
	}
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: recs})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put: %v %v", err, out)
	}
}

func TestStartCreateReadAll(t *testing.T) {
	ep, stop := Start(t)
	if !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Fatalf("endpoint %s is not loopback", ep)
	}
	c := NewClient(ep)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := CreateStream(ctx, c, "s1", 2); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
	}
	put(t, c, "s1", keys, 0)
	put(t, c, "s1", keys, 1)
	shards, err := Shards(ctx, c, "s1")
	if err != nil || len(shards) != 2 {
		t.Fatalf("shards %v %v", shards, err)
	}
	// Split shard 0 in the middle of its range; later records of its keys
	// go to the children.
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s1"), ShardToSplit: shards[0].ShardId,
		NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s1")})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	put(t, c, "s1", keys, 2)
	recs, err := ReadAll(ctx, c, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 60 {
		t.Fatalf("read %d records, want 60", len(recs))
	}
	// Per key: rounds in order (parents were read before children).
	next := map[string]int{}
	seenShard := map[string]bool{}
	lastShard := ""
	for _, r := range recs {
		if r.ShardID != lastShard {
			if seenShard[r.ShardID] {
				t.Fatalf("shard %s read in two pieces", r.ShardID)
			}
			seenShard[r.ShardID], lastShard = true, r.ShardID
		}
		var k string
		var n int
		fmt.Sscanf(strings.Replace(string(r.Data), "/", " ", 1), "%s %d", &k, &n)
		if k != r.PartitionKey || n != next[k] {
			t.Fatalf("record %q under %s after round %d", r.Data, r.PartitionKey, next[k]-1)
		}
		next[k]++
	}
	stop()
	stop() // idempotent
	if _, err := http.Post(ep, "application/json", nil); err == nil {
		t.Fatal("kinesalite still answers after stop")
	}
}
