package api

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// StreamModeDetails through CreateStream, Describe*, ListStreams and
// UpdateStreamMode, and the errors Kinesis gives for them.
func TestStreamModes(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	onDemand := &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}
	if _, err := e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"), StreamModeDetails: onDemand}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:kinesis:local:000000000000:stream/od"
	mode := func(name string) types.StreamMode {
		t.Helper()
		sum, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := e.kc.ListStreams(ctx, &kinesis.ListStreamsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var listed types.StreamMode
		for _, s := range l.StreamSummaries {
			if aws.ToString(s.StreamName) == name {
				listed = s.StreamModeDetails.StreamMode
			}
		}
		m := sum.StreamDescriptionSummary.StreamModeDetails.StreamMode
		if d.StreamDescription.StreamModeDetails.StreamMode != m || listed != m {
			t.Fatalf("%s: DescribeStreamSummary says %s, DescribeStream %s, ListStreams %s",
				name, m, d.StreamDescription.StreamModeDetails.StreamMode, listed)
		}
		return m
	}
	if m := mode("od"); m != types.StreamModeOnDemand {
		t.Fatalf("created ON_DEMAND, described %s", m)
	}
	sum, _ := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("od")})
	if n := aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount); n != defaultShardCount {
		t.Fatalf("ON_DEMAND without ShardCount: %d shards, want %d as Kinesis", n, defaultShardCount)
	}

	// The autoscaler owns an on-demand stream's shards.
	_, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("od"),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("od"),
		ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("od"),
		TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling})
	wantCode(t, err, errInvalidArgument)

	if _, err := e.kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}}); err != nil {
		t.Fatal(err)
	}
	if m := mode("od"); m != types.StreamModeProvisioned {
		t.Fatalf("after UpdateStreamMode PROVISIONED: %s", m)
	}
	if _, err := e.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("od"),
		TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
		t.Fatalf("UpdateShardCount on a provisioned stream: %v", err)
	}

	// A stream created without StreamModeDetails is provisioned.
	e.createStream("prov", 1)
	if m := mode("prov"); m != types.StreamModeProvisioned {
		t.Fatalf("default mode %s", m)
	}

	_, err = e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bad"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: "SERVERLESS"}})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: "on_demand"}})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String("arn:aws:kinesis:local:000000000000:stream/nope"),
		StreamModeDetails: onDemand})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String("not-an-arn"), StreamModeDetails: onDemand})
	wantCode(t, err, errInvalidArgument)
	// Required members the SDK would check before sending: raw calls.
	_, err = e.call(kinesisPrefix+"UpdateStreamMode", map[string]any{"StreamName": "od", "StreamModeDetails": map[string]string{"StreamMode": "ON_DEMAND"}}, nil)
	wantCode(t, err, errValidation)
	_, err = e.call(kinesisPrefix+"UpdateStreamMode", map[string]any{"StreamARN": arn}, nil)
	wantCode(t, err, errValidation)

	// Setting the mode a stream has is a no-op, as switching twice is.
	for range 2 {
		if _, err := e.kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn), StreamModeDetails: onDemand}); err != nil {
			t.Fatal(err)
		}
	}
	if m := mode("od"); m != types.StreamModeOnDemand {
		t.Fatalf("after UpdateStreamMode ON_DEMAND: %s", m)
	}
}
