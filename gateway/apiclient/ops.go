package apiclient

import (
	"context"
	"fmt"

	"github.com/weir-gateway/weir/gateway/api"
)

// The answers' shapes that gateway/api does not export, restricted to the
// members weir's tools read. Member names are the wire's (Kinesis's model).

// Shard is a shard in ListShards.
type Shard struct {
	ShardId               string
	ParentShardId         string
	AdjacentParentShardId string
	HashKeyRange          struct{ StartingHashKey, EndingHashKey string }
	SequenceNumberRange   struct{ StartingSequenceNumber, EndingSequenceNumber string }
}

// Checkpoint is one shard's entry in WeirGateway GetCheckpoints.
type Checkpoint struct {
	ShardId              string
	SequenceNumber       string
	Status               string // OK, TRIMMED or NONE
	RecordsLost          uint64
	LastSequenceNumber   string
	Closed               bool
	EndingSequenceNumber string
}

// Record is a record in GetRecords; Topic, ClientId, QoS and
// UserProperties come only from WeirGateway GetRecords.
type Record struct {
	SequenceNumber              string
	ApproximateArrivalTimestamp float64 // seconds since the epoch
	Data                        []byte
	PartitionKey                string
	Topic                       string
	ClientId                    string
	QoS                         int
	UserProperties              []UserProperty
}

// UserProperty is an MQTT v5 user property of a record.
type UserProperty struct{ Key, Value string }

// GetRecordsOutput is the answer of GetRecords. A nil NextShardIterator
// means the shard is closed and read to its end.
type GetRecordsOutput struct {
	Records            []Record
	NextShardIterator  *string
	MillisBehindLatest int64
	ChildShards        []struct{ ShardId string }
}

// DescribeGateway returns every stream, or only stream when it is not
// empty (ResourceNotFoundException if there is none).
func (c *Client) DescribeGateway(ctx context.Context, stream string) (api.DescribeGatewayOutput, error) {
	var out api.DescribeGatewayOutput
	err := c.Weir(ctx, "DescribeGateway", streamIn(stream), &out)
	if err == nil && stream != "" && (len(out.Streams) != 1 || out.Streams[0].StreamName != stream) {
		err = fmt.Errorf("apiclient: DescribeGateway answered for %d streams, not for %s alone", len(out.Streams), stream)
	}
	return out, err
}

func streamIn(stream string) map[string]string {
	if stream == "" {
		return map[string]string{}
	}
	return map[string]string{"StreamName": stream}
}

// ListShards lists every shard the gateway still keeps, following
// NextToken.
func (c *Client) ListShards(ctx context.Context, stream string) ([]Shard, error) {
	var all []Shard
	in := map[string]string{"StreamName": stream}
	for {
		var out struct {
			Shards    []Shard
			NextToken string
		}
		if err := c.Kinesis(ctx, "ListShards", in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Shards...)
		if out.NextToken == "" {
			return all, nil
		}
		in = map[string]string{"NextToken": out.NextToken}
	}
}

// RegisterStreamConsumer registers a consumer (ResourceInUseException if
// it exists).
func (c *Client) RegisterStreamConsumer(ctx context.Context, stream, consumer string) error {
	return c.Kinesis(ctx, "RegisterStreamConsumer", consumerIn(stream, consumer), nil)
}

// DescribeStreamConsumer checks that a consumer is registered
// (ResourceNotFoundException if not).
func (c *Client) DescribeStreamConsumer(ctx context.Context, stream, consumer string) error {
	return c.Kinesis(ctx, "DescribeStreamConsumer", consumerIn(stream, consumer), nil)
}

func consumerIn(stream, consumer string) map[string]string {
	return map[string]string{"StreamName": stream, "ConsumerName": consumer}
}

// GetCheckpoints returns a consumer's (or a forwarder's) positions.
func (c *Client) GetCheckpoints(ctx context.Context, stream, consumer string) ([]Checkpoint, error) {
	var out struct{ Checkpoints []Checkpoint }
	err := c.Weir(ctx, "GetCheckpoints", consumerIn(stream, consumer), &out)
	return out.Checkpoints, err
}

// CommitCheckpoint records that a consumer processed a shard up to and
// including seq.
func (c *Client) CommitCheckpoint(ctx context.Context, stream, consumer, shard, seq string) error {
	in := consumerIn(stream, consumer)
	in["ShardId"], in["SequenceNumber"] = shard, seq
	return c.Weir(ctx, "CommitCheckpoint", in, nil)
}

// GetShardIterator returns an iterator of type typ (TRIM_HORIZON, LATEST,
// AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER); seq is for the last two.
func (c *Client) GetShardIterator(ctx context.Context, stream, shard, typ, seq string) (string, error) {
	in := map[string]string{"StreamName": stream, "ShardId": shard, "ShardIteratorType": typ}
	if seq != "" {
		in["StartingSequenceNumber"] = seq
	}
	var out struct{ ShardIterator string }
	err := c.Kinesis(ctx, "GetShardIterator", in, &out)
	return out.ShardIterator, err
}

// LongPoll is WeirGateway GetRecords: it waits up to waitMillis for a
// record when there is none yet, and returns the records' MQTT fields.
// limit 0 means the gateway's default.
func (c *Client) LongPoll(ctx context.Context, iter string, waitMillis, limit int) (GetRecordsOutput, error) {
	in := map[string]any{"ShardIterator": iter, "WaitMillis": waitMillis}
	if limit > 0 {
		in["Limit"] = limit
	}
	var out GetRecordsOutput
	err := c.Weir(ctx, "GetRecords", in, &out)
	return out, err
}
