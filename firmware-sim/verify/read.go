package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// API is the part of the Kinesis client verify uses (*kinesis.Client
// satisfies it; tests pass a fake).
type API interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// ErrNoShards means the stream exists but lists no shards.
var ErrNoShards = errors.New("verify: stream has no shards")

// Record is one stream record as read.
type Record struct {
	Shard        string
	SequenceNum  string
	PartitionKey string
	Data         []byte
}

// Reader reads a whole stream, shard by shard, parents first, and can be
// polled again to pick up records that arrived since (a forwarder still
// catching up), including shards created by a reshard.
type Reader struct {
	api    API
	stream string
	// Poll is the pause between empty GetRecords calls (default 200ms).
	Poll   time.Duration
	shards map[string]*shardState
	order  []string
}

type shardState struct {
	info     types.Shard
	iterator *string
	started  bool
	closed   bool // read to its end (NextShardIterator was null)
}

// NewReader reads stream through api.
func NewReader(api API, stream string) *Reader {
	return &Reader{api: api, stream: stream, Poll: 200 * time.Millisecond, shards: map[string]*shardState{}}
}

// Pass reads every shard up to its current end and returns the records
// read in this pass: each shard's records in order, a parent's before its
// children's.
func (r *Reader) Pass(ctx context.Context) ([]Record, error) {
	if err := r.listShards(ctx); err != nil {
		return nil, err
	}
	var out []Record
	done := map[string]bool{}
	for progress := true; progress; {
		progress = false
		for _, id := range r.order {
			s := r.shards[id]
			if done[id] || !r.parentsDone(s, done) {
				continue
			}
			recs, err := r.drain(ctx, s)
			out = append(out, recs...)
			if err != nil {
				return out, err
			}
			done[id] = true
			progress = true
		}
	}
	return out, nil
}

// parentsDone: a child is read only after its parents were read to
// their end in this pass (or are gone from the stream).
func (r *Reader) parentsDone(s *shardState, done map[string]bool) bool {
	for _, p := range []*string{s.info.ParentShardId, s.info.AdjacentParentShardId} {
		if p == nil || *p == "" {
			continue
		}
		ps, ok := r.shards[*p]
		if ok && (!done[*p] || !ps.closed) {
			return false
		}
	}
	return true
}

func (r *Reader) listShards(ctx context.Context) error {
	in := &kinesis.ListShardsInput{StreamName: aws.String(r.stream)}
	for {
		out, err := r.api.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("verify: list shards of %s: %w", r.stream, err)
		}
		for _, sh := range out.Shards {
			id := aws.ToString(sh.ShardId)
			if _, ok := r.shards[id]; !ok {
				r.shards[id] = &shardState{info: sh}
				r.order = append(r.order, id)
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(r.shards) == 0 {
		return fmt.Errorf("%w: %s", ErrNoShards, r.stream)
	}
	return nil
}

// drain reads one shard until it is closed or caught up.
func (r *Reader) drain(ctx context.Context, s *shardState) ([]Record, error) {
	if s.closed {
		return nil, nil
	}
	id := aws.ToString(s.info.ShardId)
	if !s.started {
		out, err := r.api.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName:        aws.String(r.stream),
			ShardId:           s.info.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("verify: iterator for %s: %w", id, err)
		}
		s.iterator, s.started = out.ShardIterator, true
	}
	var recs []Record
	empties := 0
	for s.iterator != nil {
		out, err := r.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: s.iterator, Limit: aws.Int32(10000)})
		if err != nil {
			return recs, fmt.Errorf("verify: get records from %s: %w", id, err)
		}
		for _, rec := range out.Records {
			recs = append(recs, Record{Shard: id, SequenceNum: aws.ToString(rec.SequenceNumber), PartitionKey: aws.ToString(rec.PartitionKey), Data: rec.Data})
		}
		s.iterator = out.NextShardIterator
		if s.iterator == nil {
			s.closed = true
			break
		}
		if len(out.Records) > 0 {
			empties = 0
			continue
		}
		// Empty and at the tip: caught up. Kinesis may return empty pages
		// short of the tip, so take MillisBehindLatest's word when given
		// and otherwise require two empty pages in a row.
		empties++
		if (out.MillisBehindLatest != nil && *out.MillisBehindLatest == 0) || empties >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			return recs, ctx.Err()
		case <-time.After(r.Poll):
		}
	}
	return recs, nil
}
