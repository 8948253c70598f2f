package api

import (
	"context"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestGoSDKEveryOperation: aws-sdk-go-v2 as shipped runs every Kinesis
// operation the gateway serves, over HTTP/1.1 and over h2c, and each
// answer carries what the operation promises. Like TestJSSDKEveryOperation
// it fails for an operation added to the table but not to this list.
func TestGoSDKEveryOperation(t *testing.T) {
	keys := t.TempDir()
	writeStreamKey(t, keys, "alias/edge", 1)
	e := newEnv(t, envOptions{api: Config{Listen: "127.0.0.1:0"}, keysDir: keys})
	h2c := e.serve()
	for _, ep := range []endpoint{{"http1", e.hs.URL, http1Client()}, {"h2c", h2c, h2cClient()}} {
		t.Run(ep.name, func(t *testing.T) {
			goSDKEveryOperation(t, e, sdkClient(ep.url, ep.hc), "go-"+ep.name)
		})
		e.clock.Advance(takeoverAfter)
	}
}

func goSDKEveryOperation(t *testing.T, e *env, kc *kinesis.Client, s string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := map[string]bool{}
	must := func(op string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		done[op] = true
	}
	name := aws.String(s)

	_, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: name, ShardCount: aws.Int32(2)})
	must("CreateStream", err)
	ls, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{})
	must("ListStreams", err)
	if !slices.Contains(ls.StreamNames, s) {
		t.Errorf("ListStreams: %v", ls.StreamNames)
	}
	ds, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: name})
	must("DescribeStream", err)
	arn := ds.StreamDescription.StreamARN
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: arn})
	must("DescribeStreamSummary", err)
	if *sum.StreamDescriptionSummary.OpenShardCount != 2 {
		t.Errorf("DescribeStreamSummary: %d open shards", *sum.StreamDescriptionSummary.OpenShardCount)
	}
	lsh, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name})
	must("ListShards", err)
	shard0, shard1 := lsh.Shards[0], lsh.Shards[1]

	reg, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: arn, ConsumerName: aws.String("efo")})
	must("RegisterStreamConsumer", err)
	carn := reg.Consumer.ConsumerARN
	dc, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: carn})
	must("DescribeStreamConsumer", err)
	if dc.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive {
		t.Errorf("DescribeStreamConsumer: %s", dc.ConsumerDescription.ConsumerStatus)
	}
	lc, err := kc.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: arn})
	must("ListStreamConsumers", err)
	if len(lc.Consumers) != 1 {
		t.Errorf("ListStreamConsumers: %d", len(lc.Consumers))
	}
	sub, err := subscribe(ctx, kc, *carn, *shard0.ShardId, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	must("SubscribeToShard", err)
	defer sub.es.Close()
	sub.t = t

	pr, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte("a")})
	must("PutRecord", err)
	if *pr.ShardId != *shard0.ShardId || len(*pr.SequenceNumber) != 33 {
		t.Errorf("PutRecord: %s %s", *pr.ShardId, *pr.SequenceNumber)
	}
	var entries []types.PutRecordsRequestEntry
	for _, d := range []string{"b", "c"} {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte(d)})
	}
	prs, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: name, Records: entries})
	must("PutRecords", err)
	if *prs.FailedRecordCount != 0 {
		t.Errorf("PutRecords: %d failed", *prs.FailedRecordCount)
	}
	if recs, _ := sub.records(3); dataOf(recs) != "a,b,c" {
		t.Errorf("SubscribeToShard pushed %s", dataOf(recs))
	}
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: shard0.ShardId,
		ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: pr.SequenceNumber})
	must("GetShardIterator", err)
	gr, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	must("GetRecords", err)
	if got := dataOf(gr.Records); got != "b,c" {
		t.Errorf("GetRecords after PutRecord's number: %s", got)
	}

	_, err = kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{"site": "plant-1"}})
	must("AddTagsToStream", err)
	lt, err := kc.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: name})
	must("ListTagsForStream", err)
	if len(lt.Tags) != 1 || *lt.Tags[0].Key != "site" || *lt.Tags[0].Value != "plant-1" {
		t.Errorf("ListTagsForStream: %+v", lt.Tags)
	}
	_, err = kc.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: name, TagKeys: []string{"site"}})
	must("RemoveTagsFromStream", err)
	dl, err := kc.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{})
	must("DescribeLimits", err)
	if *dl.ShardLimit != 1024 {
		t.Errorf("DescribeLimits: ShardLimit %d", *dl.ShardLimit)
	}
	em, err := kc.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name,
		ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes}})
	must("EnableEnhancedMonitoring", err)
	if len(em.DesiredShardLevelMetrics) != 1 || em.DesiredShardLevelMetrics[0] != types.MetricsNameIncomingBytes {
		t.Errorf("EnableEnhancedMonitoring: %v", em.DesiredShardLevelMetrics)
	}
	_, err = kc.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: name,
		ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}})
	must("DisableEnhancedMonitoring", err)
	_, err = kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(48)})
	must("IncreaseStreamRetentionPeriod", err)
	_, err = kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(24)})
	must("DecreaseStreamRetentionPeriod", err)

	lo, _ := new(big.Int).SetString(*shard1.HashKeyRange.StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(*shard1.HashKeyRange.EndingHashKey, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	_, err = kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: shard1.ShardId, NewStartingHashKey: aws.String(mid.String())})
	must("SplitShard", err)
	open, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil {
		t.Fatal(err)
	}
	var children []string
	for _, sh := range open.Shards {
		if *sh.ShardId != *shard0.ShardId {
			children = append(children, *sh.ShardId)
		}
	}
	if len(children) != 2 {
		t.Fatalf("after SplitShard: open %v", children)
	}
	_, err = kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: name, ShardToMerge: &children[0], AdjacentShardToMerge: &children[1]})
	must("MergeShards", err)
	us, err := kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	must("UpdateShardCount", err)
	if *us.TargetShardCount != 4 {
		t.Errorf("UpdateShardCount: %d", *us.TargetShardCount)
	}
	_, err = kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: arn, StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	must("UpdateStreamMode", err)

	_, err = kc.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/edge")})
	must("StartStreamEncryption", err)
	enc, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, PartitionKey: aws.String("k"), Data: []byte("e")})
	if err != nil || enc.EncryptionType != types.EncryptionTypeKms {
		t.Errorf("PutRecord on an encrypted stream: %v %+v", err, enc)
	}
	_, err = kc.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/edge")})
	must("StopStreamEncryption", err)

	_, err = kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: carn})
	must("DeregisterStreamConsumer", err)
	_, err = kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: name})
	must("DeleteStream", err)

	for target := range e.srv.ops {
		if op, ok := strings.CutPrefix(target, kinesisPrefix); ok && !done[op] {
			t.Errorf("%s is served but not run here: add it", op)
		}
	}
}
