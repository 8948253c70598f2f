package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The consumer speaks Kinesis JSON 1.1 itself rather than through
// aws-sdk-go-v2: it needs eight small operations, four of which the SDK
// does not know (the WeirGateway long-poll, checkpoints and
// DescribeGateway), and a local
// application should not pull the SDK, SigV4 signing and its retry policy
// in for a loopback call. Retries here are the consumer's own: forever, with
// backoff, because the gateway restarting is normal.
const (
	kinesisPrefix = "Kinesis_20131202."
	weirPrefix    = "WeirGateway_20261125."
	contentType   = "application/x-amz-json-1.1"
)

// APIError is an error answer of the gateway.
type APIError struct {
	Status  int
	Code    string // Kinesis exception name, e.g. ResourceNotFoundException
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("consumer: gateway answered %d %s: %s", e.Status, e.Code, e.Message)
}

// codeOf returns the exception name of an API error, "" for other errors.
func codeOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

type client struct {
	endpoint string
	hc       *http.Client
}

func (c *client) call(ctx context.Context, target string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", target)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
			Msg2    string `json:"Message"`
		}
		_ = json.Unmarshal(b, &eb)
		code := eb.Type
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		if code == "" {
			code = resp.Header.Get("X-Amzn-ErrorType")
		}
		msg := eb.Message
		if msg == "" {
			msg = eb.Msg2
		}
		return &APIError{Status: resp.StatusCode, Code: code, Message: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("consumer: decode %s answer: %w", target, err)
	}
	return nil
}

// --- wire shapes (the subset the consumer reads) ---

type shardWire struct {
	ShardId               string
	ParentShardId         string
	AdjacentParentShardId string
	SequenceNumberRange   struct {
		StartingSequenceNumber string
		EndingSequenceNumber   string
	}
}

type listShardsOut struct {
	Shards    []shardWire
	NextToken string
}

type checkpointWire struct {
	ShardId              string
	SequenceNumber       string
	Status               string
	RecordsLost          uint64
	LastSequenceNumber   string
	Closed               bool
	EndingSequenceNumber string
}

type recordWire struct {
	SequenceNumber              string
	ApproximateArrivalTimestamp float64
	Data                        []byte
	PartitionKey                string
	Topic                       string
	ClientId                    string
	QoS                         int
	UserProperties              []UserProperty
}

type getRecordsOut struct {
	Records            []recordWire
	NextShardIterator  *string
	MillisBehindLatest int64
	ChildShards        []struct{ ShardId string }
}

// gatewayShardWire is a shard in WeirGateway_20261125.DescribeGateway: the
// consumer reads each shard's current range from it to turn From into
// positions and to know where StopAtEnd stops.
type gatewayShardWire struct {
	ShardId                   string
	Closed                    bool
	StartingSequenceNumber    string
	EndingSequenceNumber      string
	TrimHorizonSequenceNumber string
	LastSequenceNumber        string
}

func (c *client) describeShards(ctx context.Context, stream string) ([]gatewayShardWire, error) {
	var out struct {
		Streams []struct {
			StreamName string
			Shards     []gatewayShardWire
		}
	}
	if err := c.call(ctx, weirPrefix+"DescribeGateway", map[string]string{"StreamName": stream}, &out); err != nil {
		return nil, err
	}
	if len(out.Streams) != 1 || out.Streams[0].StreamName != stream {
		return nil, fmt.Errorf("consumer: DescribeGateway answered for %d streams, not for %s alone", len(out.Streams), stream)
	}
	return out.Streams[0].Shards, nil
}

func (c *client) describeConsumer(ctx context.Context, stream, name string) error {
	return c.call(ctx, kinesisPrefix+"DescribeStreamConsumer", map[string]string{"StreamName": stream, "ConsumerName": name}, nil)
}

func (c *client) registerConsumer(ctx context.Context, stream, name string) error {
	return c.call(ctx, kinesisPrefix+"RegisterStreamConsumer", map[string]string{"StreamName": stream, "ConsumerName": name}, nil)
}

func (c *client) listShards(ctx context.Context, stream string) ([]shardWire, error) {
	var all []shardWire
	in := map[string]any{"StreamName": stream}
	for {
		var out listShardsOut
		if err := c.call(ctx, kinesisPrefix+"ListShards", in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Shards...)
		if out.NextToken == "" {
			return all, nil
		}
		in = map[string]any{"NextToken": out.NextToken}
	}
}

func (c *client) getCheckpoints(ctx context.Context, stream, name string) ([]checkpointWire, error) {
	var out struct{ Checkpoints []checkpointWire }
	err := c.call(ctx, weirPrefix+"GetCheckpoints", map[string]string{"StreamName": stream, "ConsumerName": name}, &out)
	return out.Checkpoints, err
}

func (c *client) commit(ctx context.Context, stream, name, shard, seq string) error {
	return c.call(ctx, weirPrefix+"CommitCheckpoint", map[string]string{"StreamName": stream, "ConsumerName": name,
		"ShardId": shard, "SequenceNumber": seq}, nil)
}

func (c *client) shardIterator(ctx context.Context, stream, shard, typ, seq string) (string, error) {
	in := map[string]string{"StreamName": stream, "ShardId": shard, "ShardIteratorType": typ}
	if seq != "" {
		in["StartingSequenceNumber"] = seq
	}
	var out struct{ ShardIterator string }
	err := c.call(ctx, kinesisPrefix+"GetShardIterator", in, &out)
	return out.ShardIterator, err
}

func (c *client) longPoll(ctx context.Context, iter string, waitMillis, limit int) (getRecordsOut, error) {
	in := map[string]any{"ShardIterator": iter, "WaitMillis": waitMillis}
	if limit > 0 {
		in["Limit"] = limit
	}
	var out getRecordsOut
	err := c.call(ctx, weirPrefix+"GetRecords", in, &out)
	return out, err
}
