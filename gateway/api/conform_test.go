package api

import (
	"bytes"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/shards"
)

// Regression tests of the conformance bugs in issue 15, each named after
// the bug it pins.

func TestPutRecordsOversizeEntryIsValidationException(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("big", 1)
	ctx := e.ctx()
	entries := []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: []byte("small")},
		{PartitionKey: aws.String("k"), Data: bytes.Repeat([]byte("x"), 1<<20)}, // + the key: over 1 MiB
	}
	_, err := e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("big"), Records: entries})
	wantCode(t, err, errValidation)
	if !strings.Contains(err.Error(), "records.2.member.data") {
		t.Errorf("the message should name the entry: %v", err)
	}
	// Nothing of the refused request was stored.
	if g := e.get(e.iter("big", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, ""), 0); len(g.Records) != 0 {
		t.Fatalf("%d records stored from a refused request", len(g.Records))
	}
}

func TestDeleteStreamWithConsumersNeedsEnforce(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("del", 1)
	ctx := e.ctx()
	arn := "arn:aws:kinesis:local:000000000000:stream/del"
	if _, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("del")})
	wantCode(t, err, errResourceInUse)
	// The refusal kept the stream and the consumer.
	if _, err := e.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("app")}); err != nil {
		t.Fatalf("consumer after a refused delete: %v", err)
	}
	if _, err := e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("del"), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatalf("DeleteStream with EnforceConsumerDeletion: %v", err)
	}
	if _, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("del")}); errCode(err) != errResourceNotFound {
		t.Fatalf("stream after delete: %v", err)
	}
}

// A stream whose on_limit is backpressure (what MQTT devices get) still
// answers API writes over its rate at once, as Kinesis does. The test clock
// never moves, so the buckets never refill: the old code waited for the
// refill on the real clock and then stored the records.
func TestAPIWriteOverRateFailsPerEntry(t *testing.T) {
	rate := func(name string, n int) shards.StreamConfig {
		return shards.StreamConfig{Name: name, Shards: 1, Rate: shards.RateConfig{RecordsPerSec: n, OnLimit: shards.OnLimitBackpress}}
	}
	e := newEnv(t, envOptions{streams: []shards.StreamConfig{rate("slow", 10), rate("busy", 1000)}})
	ctx := e.ctx()
	e.put("slow", "k", []byte("spends the burst"))
	entries := make([]types.PutRecordsRequestEntry, 3)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte{byte('a' + i)}}
	}
	out, err := e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("slow"), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 3 {
		t.Fatalf("FailedRecordCount %d, want 3", aws.ToInt32(out.FailedRecordCount))
	}
	for i, r := range out.Records {
		if aws.ToString(r.ErrorCode) != errThroughputExceeded {
			t.Fatalf("entry %d: %+v", i, r)
		}
	}
	_, err = e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("slow"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, errThroughputExceeded)

	// Entries are admitted in order while the rate lasts: with room for
	// some, the first ones succeed and the rest fail, never a later
	// record of a shard stored after an earlier one was refused.
	// "busy" takes 1000 records/s: a burst of 100.
	batch := func(n int) *kinesis.PutRecordsOutput {
		t.Helper()
		entries := make([]types.PutRecordsRequestEntry, n)
		for i := range entries {
			entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte{byte(i)}}
		}
		out, err := e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("busy"), Records: entries})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := batch(100); aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("a burst's worth: %d failed", aws.ToInt32(out.FailedRecordCount))
	}
	e.clock.Advance(50 * time.Millisecond) // 50 records' worth
	out = batch(80)
	if aws.ToInt32(out.FailedRecordCount) != 30 {
		t.Fatalf("80 entries with room for 50: %d failed", aws.ToInt32(out.FailedRecordCount))
	}
	for i, r := range out.Records {
		if failed := r.ErrorCode != nil; failed != (i >= 50) {
			t.Fatalf("entry %d: %+v", i, r)
		}
	}
}

func TestCreateStreamTooManyShardsIsLimitExceeded(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, err := e.kc.CreateStream(e.ctx(), &kinesis.CreateStreamInput{StreamName: aws.String("huge"), ShardCount: aws.Int32(shards.MaxOpenShards + 1)})
	wantCode(t, err, errLimitExceeded)
}

func TestStaleConsumerARNNotFound(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("sc", 1)
	ctx := e.ctx()
	streamARN := aws.String("arn:aws:kinesis:local:000000000000:stream/sc")
	reg := func() string {
		t.Helper()
		out, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String("app")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Consumer.ConsumerARN)
	}
	old := reg()
	if _, err := e.kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	fresh := reg()
	if fresh == old {
		t.Fatalf("re-registration kept the ARN %s", old)
	}
	_, err := e.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(old)})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(old)})
	wantCode(t, err, errResourceNotFound)
	if _, err := e.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(fresh)}); err != nil {
		t.Fatalf("the current ARN: %v", err)
	}
}

func TestEmptyClosedShardEndingSeq(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("empty", 1)
	ctx := e.ctx()
	if _, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
		StreamARN: aws.String("arn:aws:kinesis:local:000000000000:stream/empty"), ConsumerName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	mid := new(big.Int).Lsh(big.NewInt(1), 127).String()
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("empty"),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	d, err := e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("empty")})
	if err != nil {
		t.Fatal(err)
	}
	parent := d.StreamDescription.Shards[0]
	r := parent.SequenceNumberRange
	if r.EndingSequenceNumber == nil || aws.ToString(r.EndingSequenceNumber) < aws.ToString(r.StartingSequenceNumber) {
		t.Fatalf("empty closed shard: %s..%s", aws.ToString(r.StartingSequenceNumber), aws.ToString(r.EndingSequenceNumber))
	}
	// The ending number is usable: a consumer checkpoints it to mark the
	// shard done, and reading after it is the shard's end.
	end := aws.ToString(r.EndingSequenceNumber)
	if _, err := e.call(weirPrefix+"CommitCheckpoint", map[string]string{"StreamName": "empty", "ConsumerName": "app",
		"ShardId": "shardId-000000000000", "SequenceNumber": end}, nil); err != nil {
		t.Fatalf("commit the ending sequence number: %v", err)
	}
	g := e.get(e.iter("empty", "shardId-000000000000", types.ShardIteratorTypeAfterSequenceNumber, end), 0)
	if len(g.Records) != 0 || g.NextShardIterator != nil || len(g.ChildShards) != 2 {
		t.Fatalf("after the ending number: %d records, next %v, %d children", len(g.Records), g.NextShardIterator, len(g.ChildShards))
	}
}

func TestEmptyBodyIsSerializationException(t *testing.T) {
	e := newEnv(t, envOptions{})
	post := func(ctype, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("X-Amz-Target", kinesisPrefix+"ListStreams")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		return resp.StatusCode, eb.Type
	}
	if code, typ := post(contentTypeJSON, ""); code != 400 || typ != errSerialization {
		t.Errorf("empty body: %d %s", code, typ)
	}
	if code, typ := post("text/plain", "{}"); code != 404 || typ != errUnknownOperation {
		t.Errorf("text/plain: %d %s", code, typ)
	}
	if code, typ := post("", "{}"); code != 404 || typ != errUnknownOperation {
		t.Errorf("no Content-Type: %d %s", code, typ)
	}
	if code, typ := post(contentTypeJSON, "{}"); code != 200 {
		t.Errorf("{}: %d %s", code, typ)
	}
}

// Sequence numbers are unique in a stream and encode their shard: both
// children of a split number differently, and a number used with another
// shard is InvalidArgumentException wherever a number is accepted.
func TestSequenceNumberOfAnotherShardIsInvalidArgument(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("sq", 2)
	ctx := e.ctx()
	if _, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
		StreamARN: aws.String("arn:aws:kinesis:local:000000000000:stream/sq"), ConsumerName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	hi := "300000000000000000000000000000000000000"
	a, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("sq"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("sq"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(hi), Data: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := aws.ToString(a.SequenceNumber), aws.ToString(b.SequenceNumber)
	if sa == sb || len(sa) != 33 || len(sb) != 33 {
		t.Fatalf("first records of two shards: %s and %s", sa, sb)
	}
	for _, typ := range []types.ShardIteratorType{types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber} {
		_, err = e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("sq"), ShardId: b.ShardId,
			ShardIteratorType: typ, StartingSequenceNumber: aws.String(sa)})
		wantCode(t, err, errInvalidArgument)
		if !strings.Contains(err.Error(), "It encodes shardId-000000000000, while it was used in a call to a shard with shardId-000000000001") {
			t.Errorf("message: %v", err)
		}
	}
	_, err = e.call(weirPrefix+"CommitCheckpoint", map[string]string{"StreamName": "sq", "ConsumerName": "app",
		"ShardId": aws.ToString(b.ShardId), "SequenceNumber": sa}, nil)
	wantCode(t, err, errInvalidArgument)

	// The children of a split number their records differently.
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("sq"), ShardToSplit: a.ShardId,
		NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	c1, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("sq"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte("c1")})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("sq"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("1000"), Data: []byte("c2")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(c1.ShardId) == aws.ToString(c2.ShardId) || aws.ToString(c1.SequenceNumber) == aws.ToString(c2.SequenceNumber) ||
		aws.ToString(c1.SequenceNumber) <= sa || aws.ToString(c2.SequenceNumber) <= sa {
		t.Fatalf("split children: %s %s / %s %s after %s", aws.ToString(c1.ShardId), aws.ToString(c1.SequenceNumber),
			aws.ToString(c2.ShardId), aws.ToString(c2.SequenceNumber), sa)
	}
}
