package forwarder

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/weir-gateway/weir/shards"
)

// listLoop keeps the upstream shard map for pacing fresh.
func (e *engine) listLoop(ctx context.Context, sm shardMapper) {
	defer e.wg.Done()
	warned := false
	for {
		up, err := sm.upstreamShards(ctx)
		switch {
		case err == nil:
			select {
			case e.upMap <- up:
			case <-e.stopWatch:
				return
			}
		case ctx.Err() == nil && !warned:
			warned = true
			e.log.Info().Err(err).Msg("cannot list upstream shards; throttled keys are paced one by one instead of per upstream shard")
		}
		select {
		case <-time.After(e.opts.UpstreamMapInterval):
		case <-e.stopWatch:
			return
		case <-ctx.Done():
			return
		}
	}
}

func listUpstream(ctx context.Context, api ListShardsAPI, stream string, timeout time.Duration) ([]upShard, error) {
	var up []upShard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		c, cancel := context.WithTimeout(ctx, timeout)
		out, err := api.ListShards(c, in)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, s := range out.Shards {
			if s.HashKeyRange == nil || (s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil) {
				continue // closed: takes no writes
			}
			lo, err1 := shards.ParseHashKey(aws.ToString(s.HashKeyRange.StartingHashKey))
			hi, err2 := shards.ParseHashKey(aws.ToString(s.HashKeyRange.EndingHashKey))
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("forwarder: upstream shard %s has a bad hash range", aws.ToString(s.ShardId))
			}
			up = append(up, upShard{id: aws.ToString(s.ShardId), start: lo, end: hi})
		}
		if out.NextToken == nil {
			return up, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}
