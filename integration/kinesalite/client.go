package kinesalite

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Region and Credentials are what test clients sign with; kinesalite
// wants a signature but checks none.
const Region = "us-east-1"

// Credentials are static test credentials.
var Credentials = credentials.NewStaticCredentialsProvider("AKIDWEIRTEST", "weir-test-secret", "")

// NewClient returns a Kinesis client for endpoint with test credentials.
func NewClient(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       Region,
		Credentials:  Credentials,
		BaseEndpoint: aws.String(endpoint),
	})
}

// CreateStream creates a stream with n shards and waits until it is ACTIVE.
func CreateStream(ctx context.Context, c *kinesis.Client, name string, n int) error {
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))}); err != nil {
		return fmt.Errorf("kinesalite: create stream %s: %w", name, err)
	}
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("kinesalite: describe stream %s: %w", name, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Record is one upstream record as read back.
type Record struct {
	ShardID        string
	SequenceNumber string
	PartitionKey   string
	Data           []byte
}

// Shards lists every shard of the stream (ListShards, all pages).
func Shards(ctx context.Context, c *kinesis.Client, name string) ([]types.Shard, error) {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(name)}
	for {
		out, err := c.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("kinesalite: list shards of %s: %w", name, err)
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// ReadAll reads every shard of the stream from TRIM_HORIZON, parents
// before children, and returns the records shard after shard, each shard's
// in its order.
func ReadAll(ctx context.Context, c *kinesis.Client, name string) ([]Record, error) {
	shards, err := Shards(ctx, c, name)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, sh := range parentsFirst(shards) {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(name), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("kinesalite: iterator for %s: %w", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return nil, fmt.Errorf("kinesalite: read %s: %w", aws.ToString(sh.ShardId), err)
			}
			for _, r := range res.Records {
				out = append(out, Record{ShardID: aws.ToString(sh.ShardId), SequenceNumber: aws.ToString(r.SequenceNumber),
					PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
			}
			if len(res.Records) == 0 {
				break // kinesalite has everything at once: empty means the end
			}
			iter = res.NextShardIterator
		}
	}
	return out, nil
}

// parentsFirst orders shards so that every parent comes before its
// children, otherwise by id.
func parentsFirst(shards []types.Shard) []types.Shard {
	sort.Slice(shards, func(i, j int) bool { return aws.ToString(shards[i].ShardId) < aws.ToString(shards[j].ShardId) })
	byID := map[string]types.Shard{}
	for _, s := range shards {
		byID[aws.ToString(s.ShardId)] = s
	}
	done := map[string]bool{}
	var out []types.Shard
	var visit func(s types.Shard)
	visit = func(s types.Shard) {
		id := aws.ToString(s.ShardId)
		if done[id] {
			return
		}
		done[id] = true
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if ps, ok := byID[aws.ToString(p)]; ok && p != nil {
				visit(ps)
			}
		}
		out = append(out, s)
	}
	for _, s := range shards {
		visit(s)
	}
	return out
}
