package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/shards"
)

func TestCreateListDescribeDelete(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	for i := range 5 {
		e.createStream(fmt.Sprintf("s%d", i), i+1)
	}
	_, err := e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s0"), ShardCount: aws.Int32(1)})
	wantCode(t, err, errResourceInUse)
	_, err = e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bad name!"), ShardCount: aws.Int32(1)})
	wantCode(t, err, errValidation)

	// ListStreams pages by Limit/NextToken and by ExclusiveStartStreamName.
	var names []string
	var in kinesis.ListStreamsInput
	in.Limit = aws.Int32(2)
	for pages := 0; ; pages++ {
		out, err := e.kc.ListStreams(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, out.StreamNames...)
		if len(out.StreamSummaries) != len(out.StreamNames) {
			t.Fatalf("summaries %d != names %d", len(out.StreamSummaries), len(out.StreamNames))
		}
		for _, s := range out.StreamSummaries {
			if s.StreamStatus != types.StreamStatusActive || aws.ToString(s.StreamARN) != "arn:aws:kinesis:local:000000000000:stream/"+aws.ToString(s.StreamName) {
				t.Fatalf("summary %+v", s)
			}
		}
		if !aws.ToBool(out.HasMoreStreams) {
			break
		}
		in = kinesis.ListStreamsInput{Limit: aws.Int32(2), NextToken: out.NextToken}
		if pages > 5 {
			t.Fatal("ListStreams does not end")
		}
	}
	if fmt.Sprint(names) != "[s0 s1 s2 s3 s4]" {
		t.Fatalf("streams = %v", names)
	}
	out, err := e.kc.ListStreams(ctx, &kinesis.ListStreamsInput{ExclusiveStartStreamName: aws.String("s2")})
	if err != nil || fmt.Sprint(out.StreamNames) != "[s3 s4]" || aws.ToBool(out.HasMoreStreams) {
		t.Fatalf("after s2: %v %v", out.StreamNames, err)
	}

	// DescribeStream pages shards with Limit/ExclusiveStartShardId.
	d, err := e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s4"), Limit: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	sd := d.StreamDescription
	if len(sd.Shards) != 3 || !aws.ToBool(sd.HasMoreShards) || aws.ToInt32(sd.RetentionPeriodHours) != 24 {
		t.Fatalf("describe page 1: %d shards more=%v retention=%d", len(sd.Shards), aws.ToBool(sd.HasMoreShards), aws.ToInt32(sd.RetentionPeriodHours))
	}
	if aws.ToString(sd.Shards[0].HashKeyRange.StartingHashKey) != "0" || aws.ToString(sd.Shards[0].SequenceNumberRange.StartingSequenceNumber) != shards.FormatSeq("shardId-000000000000", 1) {
		t.Fatalf("shard 0: %+v", sd.Shards[0])
	}
	d, err = e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamARN: sd.StreamARN, ExclusiveStartShardId: sd.Shards[2].ShardId})
	if err != nil || len(d.StreamDescription.Shards) != 2 || aws.ToBool(d.StreamDescription.HasMoreShards) {
		t.Fatalf("describe page 2: %+v %v", d, err)
	}
	if got := aws.ToString(d.StreamDescription.Shards[1].HashKeyRange.EndingHashKey); got != "340282366920938463463374607431768211455" {
		t.Fatalf("last shard ends at %s", got)
	}

	sum, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s2")})
	if err != nil {
		t.Fatal(err)
	}
	if s := sum.StreamDescriptionSummary; aws.ToInt32(s.OpenShardCount) != 3 || aws.ToInt32(s.ConsumerCount) != 0 || s.StreamCreationTimestamp.IsZero() {
		t.Fatalf("summary %+v", s)
	}

	if _, err := e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s1")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s1")})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s1")})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String("arn:aws:kinesis:eu-west-1:123:stream/nope")})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String("arn:aws:s3:::bucket")})
	wantCode(t, err, errInvalidArgument)
}

func TestRetention(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	e.createStream("r", 1)
	if _, err := e.kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("r"), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("r"), RetentionPeriodHours: aws.Int32(30)})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("r"), RetentionPeriodHours: aws.Int32(72)})
	wantCode(t, err, errInvalidArgument)
	if _, err := e.kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("r"), RetentionPeriodHours: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("r"), RetentionPeriodHours: aws.Int32(9000)})
	wantCode(t, err, errValidation)
	_, err = e.kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("gone"), RetentionPeriodHours: aws.Int32(48)})
	wantCode(t, err, errResourceNotFound)
	d, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("r")})
	if err != nil || aws.ToInt32(d.StreamDescriptionSummary.RetentionPeriodHours) != 2 {
		t.Fatalf("retention after decrease: %+v %v", d, err)
	}
}

func shardIDs(ss []types.Shard) []string {
	var out []string
	for _, s := range ss {
		out = append(out, aws.ToString(s.ShardId))
	}
	return out
}

func TestReshardAndListShards(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	e.createStream("rs", 2)
	created := e.clock.Now()
	e.clock.Advance(time.Minute)

	// Split shard 0 in the middle of its range.
	d, _ := e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("rs")})
	mid := "85070591730234615865843651857942052864" // 2^126
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("rs"), ShardToSplit: d.StreamDescription.Shards[0].ShardId, NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("rs"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)})
	wantCode(t, err, errInvalidArgument) // closed now
	_, err = e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("rs"), ShardToSplit: aws.String("shardId-000000000099"), NewStartingHashKey: aws.String(mid)})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("rs"), ShardToSplit: aws.String("shardId-000000000001"), NewStartingHashKey: aws.String("x")})
	wantCode(t, err, errInvalidArgument)
	splitAt := e.clock.Now()
	e.clock.Advance(time.Minute)

	// Merge the two children back.
	if _, err := e.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("rs"), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000003")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("rs"), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
	wantCode(t, err, errInvalidArgument)

	all, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("rs")})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(shardIDs(all.Shards)); got != "[shardId-000000000000 shardId-000000000001 shardId-000000000002 shardId-000000000003 shardId-000000000004]" {
		t.Fatalf("shards = %s", got)
	}
	merged := all.Shards[4]
	if aws.ToString(merged.ParentShardId) != "shardId-000000000002" || aws.ToString(merged.AdjacentParentShardId) != "shardId-000000000003" {
		t.Fatalf("merge child %+v", merged)
	}
	if all.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil || all.Shards[1].SequenceNumberRange.EndingSequenceNumber != nil {
		t.Fatal("closed shards need EndingSequenceNumber, open ones none")
	}

	// Paging with MaxResults and NextToken; the token stands alone.
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String("rs"), MaxResults: aws.Int32(2)}
	for range 5 {
		out, err := e.kc.ListShards(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, shardIDs(out.Shards)...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(2)}
	}
	if len(ids) != 5 {
		t.Fatalf("paged shards = %v", ids)
	}
	tok, _ := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("rs"), MaxResults: aws.Int32(1)})
	_, err = e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("rs"), NextToken: tok.NextToken})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.ListShards(ctx, &kinesis.ListShardsInput{NextToken: aws.String("garbage")})
	wantCode(t, err, errInvalidArgument)
	e.clock.Advance(6 * time.Minute)
	_, err = e.kc.ListShards(ctx, &kinesis.ListShardsInput{NextToken: tok.NextToken})
	wantCode(t, err, errExpiredNextToken)
	e.clock.Advance(-6 * time.Minute)

	filter := func(f types.ShardFilter) string {
		t.Helper()
		out, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("rs"), ShardFilter: &f})
		if err != nil {
			t.Fatalf("filter %s: %v", f.Type, err)
		}
		return fmt.Sprint(shardIDs(out.Shards))
	}
	cases := []struct {
		f    types.ShardFilter
		want string
	}{
		{types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, "[shardId-000000000001 shardId-000000000004]"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, "[shardId-000000000000 shardId-000000000001]"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, "[shardId-000000000000 shardId-000000000001 shardId-000000000002 shardId-000000000003 shardId-000000000004]"},
		{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000002")}, "[shardId-000000000003 shardId-000000000004]"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(created.Add(30 * time.Second))}, "[shardId-000000000000 shardId-000000000001]"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(splitAt.Add(30 * time.Second))}, "[shardId-000000000001 shardId-000000000002 shardId-000000000003]"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(splitAt.Add(30 * time.Second))}, "[shardId-000000000001 shardId-000000000002 shardId-000000000003 shardId-000000000004]"},
	}
	for _, c := range cases {
		if got := filter(c.f); got != c.want {
			t.Errorf("ShardFilter %s %v: got %s, want %s", c.f.Type, aws.ToTime(c.f.Timestamp), got, c.want)
		}
	}
	_, err = e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("rs"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp}})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("nope")})
	wantCode(t, err, errResourceNotFound)

	// UpdateShardCount: 2 open -> 4 open.
	u, err := e.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("rs"), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(u.CurrentShardCount) != 2 || aws.ToInt32(u.TargetShardCount) != 4 {
		t.Fatalf("UpdateShardCount = %+v", u)
	}
	open, _ := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("rs"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if len(open.Shards) != 4 {
		t.Fatalf("open shards after scaling = %v", shardIDs(open.Shards))
	}
	_, err = e.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("rs"), TargetShardCount: aws.Int32(100), ScalingType: types.ScalingTypeUniformScaling})
	wantCode(t, err, errLimitExceeded)
}
