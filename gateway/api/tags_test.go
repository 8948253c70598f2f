package api

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/internal/promtest"
	"github.com/weir-gateway/weir/shards"
)

func TestStreamTags(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("tg", 1)
	ctx := e.ctx()
	name := aws.String("tg")
	list := func(limit int32, after string) *kinesis.ListTagsForStreamOutput {
		t.Helper()
		in := &kinesis.ListTagsForStreamInput{StreamName: name}
		if limit > 0 {
			in.Limit = aws.Int32(limit)
		}
		if after != "" {
			in.ExclusiveStartTagKey = aws.String(after)
		}
		out, err := e.kc.ListTagsForStream(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := list(0, ""); len(out.Tags) != 0 || aws.ToBool(out.HasMoreTags) {
		t.Fatalf("a new stream's tags: %+v", out.Tags)
	}
	if _, err := e.kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name,
		Tags: map[string]string{"env": "plant", "team": "ops", "cost": ""}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{"env": "lab"}}); err != nil {
		t.Fatal(err)
	}
	out := list(2, "")
	if len(out.Tags) != 2 || !aws.ToBool(out.HasMoreTags) || aws.ToString(out.Tags[0].Key) != "cost" || aws.ToString(out.Tags[1].Value) != "lab" {
		t.Fatalf("page 1: %+v more=%v", out.Tags, aws.ToBool(out.HasMoreTags))
	}
	if out := list(2, "env"); len(out.Tags) != 1 || aws.ToBool(out.HasMoreTags) || aws.ToString(out.Tags[0].Key) != "team" {
		t.Fatalf("page 2: %+v", out.Tags)
	}
	if _, err := e.kc.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: name, TagKeys: []string{"team", "absent"}}); err != nil {
		t.Fatal(err)
	}
	// Tags are durable.
	e.restart(envOptions{})
	if out := list(0, ""); len(out.Tags) != 2 || aws.ToString(out.Tags[0].Key) != "cost" || aws.ToString(out.Tags[1].Key) != "env" {
		t.Fatalf("after remove and restart: %+v", out.Tags)
	}
	// At most 50 per stream.
	for i := 0; len(list(0, "").Tags) < shards.MaxTags; i++ {
		tags := map[string]string{}
		for j := range 10 {
			if len(list(0, "").Tags)+len(tags) < shards.MaxTags {
				tags[fmt.Sprintf("k%02d-%d", i, j)] = "v"
			}
		}
		if _, err := e.kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{"one-too-many": "v"}})
	wantCode(t, err, errLimitExceeded)
	_, err = e.kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("nope"), Tags: map[string]string{"a": "b"}})
	wantCode(t, err, errResourceNotFound)
}

func TestDescribeLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("a", 2)
	e.createStream("b", 3)
	out, err := e.kc.DescribeLimits(e.ctx(), &kinesis.DescribeLimitsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.ShardLimit) != shards.MaxOpenShards || aws.ToInt32(out.OpenShardCount) != 5 {
		t.Fatalf("DescribeLimits: limit %d open %d", aws.ToInt32(out.ShardLimit), aws.ToInt32(out.OpenShardCount))
	}
}

// EnableEnhancedMonitoring turns the shard-level metrics on in /metrics
// under their Prometheus names; DisableEnhancedMonitoring turns them off.
func TestEnhancedMonitoringMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("em", 1)
	ctx := e.ctx()
	name := aws.String("em")
	e.put("em", "k", []byte("12345")) // 6 bytes with the key
	e.get(e.iter("em", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, ""), 0)
	sh := []string{"stream", "em", "shard", "shardId-000000000000"}
	m := promtest.Scrape(t, e.hc, e.hs.URL+"/metrics")
	if m.Has("weir_shard_incoming_bytes_total") {
		t.Fatal("shard-level metrics before EnableEnhancedMonitoring")
	}
	on, err := e.kc.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name,
		ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(on.CurrentShardLevelMetrics) != 0 || len(on.DesiredShardLevelMetrics) != 7 {
		t.Fatalf("enable ALL: %v -> %v", on.CurrentShardLevelMetrics, on.DesiredShardLevelMetrics)
	}
	m = promtest.Scrape(t, e.hc, e.hs.URL+"/metrics")
	m.Want(t, 6, "weir_shard_incoming_bytes_total", sh...)
	m.Want(t, 0, "weir_shard_write_throttled_records_total", sh...)
	m.Want(t, 0, "weir_shard_iterator_age_seconds", sh...)
	if probs, err := m.Lint(); err != nil || len(probs) > 0 {
		t.Fatalf("lint: %v %v", probs, err)
	}
	off, err := e.kc.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: name,
		ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes}})
	if err != nil {
		t.Fatal(err)
	}
	if len(off.DesiredShardLevelMetrics) != 6 {
		t.Fatalf("disable IncomingBytes: %v", off.DesiredShardLevelMetrics)
	}
	d, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.StreamDescriptionSummary.EnhancedMonitoring[0].ShardLevelMetrics; len(got) != 6 {
		t.Fatalf("DescribeStreamSummary EnhancedMonitoring %v", got)
	}
	m = promtest.Scrape(t, e.hc, e.hs.URL+"/metrics")
	if m.Has("weir_shard_incoming_bytes_total") || !m.Has("weir_shard_iterator_age_seconds") {
		t.Fatal("after disabling IncomingBytes")
	}
	_, err = e.kc.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name,
		ShardLevelMetrics: []types.MetricsName{"NotAMetric"}})
	wantCode(t, err, errInvalidArgument)
}
