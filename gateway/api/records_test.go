package api

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

func (e *env) put(stream, key string, data []byte) *kinesis.PutRecordOutput {
	e.t.Helper()
	out, err := e.kc.PutRecord(e.ctx(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(key), Data: data})
	if err != nil {
		e.t.Fatalf("PutRecord: %v", err)
	}
	return out
}

func (e *env) iter(stream, shard string, typ types.ShardIteratorType, seq string) *string {
	e.t.Helper()
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: typ}
	if seq != "" {
		in.StartingSequenceNumber = aws.String(seq)
	}
	out, err := e.kc.GetShardIterator(e.ctx(), in)
	if err != nil {
		e.t.Fatalf("GetShardIterator %s %s: %v", typ, seq, err)
	}
	return out.ShardIterator
}

func (e *env) get(it *string, limit int32) *kinesis.GetRecordsOutput {
	e.t.Helper()
	in := &kinesis.GetRecordsInput{ShardIterator: it}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	out, err := e.kc.GetRecords(e.ctx(), in)
	if err != nil {
		e.t.Fatalf("GetRecords: %v", err)
	}
	return out
}

func dataOf(rs []types.Record) string {
	var s []string
	for _, r := range rs {
		s = append(s, string(r.Data))
	}
	return strings.Join(s, ",")
}

func TestPutAndGetRecords(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	e.createStream("p", 1)
	var seqs []string
	for i := range 10 {
		out := e.put("p", fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("r%d", i)))
		if aws.ToString(out.ShardId) != "shardId-000000000000" {
			t.Fatalf("shard %s", aws.ToString(out.ShardId))
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	putAt := e.clock.Now()
	e.clock.Advance(5 * time.Second)

	it := e.iter("p", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
	g := e.get(it, 4)
	if dataOf(g.Records) != "r0,r1,r2,r3" || g.NextShardIterator == nil {
		t.Fatalf("first page %q next=%v", dataOf(g.Records), g.NextShardIterator)
	}
	if r := g.Records[0]; aws.ToString(r.PartitionKey) != "k0" || aws.ToString(r.SequenceNumber) != seqs[0] ||
		r.ApproximateArrivalTimestamp.UnixMilli() != putAt.UnixMilli() {
		t.Fatalf("record 0 = %+v (arrival %v, want %v)", r, r.ApproximateArrivalTimestamp, putAt)
	}
	if got := aws.ToInt64(g.MillisBehindLatest); got != 5000 {
		t.Fatalf("MillisBehindLatest = %d while behind, want 5000", got)
	}
	g = e.get(g.NextShardIterator, 0)
	if dataOf(g.Records) != "r4,r5,r6,r7,r8,r9" || aws.ToInt64(g.MillisBehindLatest) != 0 {
		t.Fatalf("second page %q behind=%d", dataOf(g.Records), aws.ToInt64(g.MillisBehindLatest))
	}
	g = e.get(g.NextShardIterator, 0)
	if len(g.Records) != 0 || g.NextShardIterator == nil {
		t.Fatalf("at the tip: %d records, next %v", len(g.Records), g.NextShardIterator)
	}
	// The iterator at the tip sees a later record.
	e.put("p", "late", []byte("r10"))
	if g = e.get(g.NextShardIterator, 0); dataOf(g.Records) != "r10" {
		t.Fatalf("after the tip %q", dataOf(g.Records))
	}

	for _, c := range []struct {
		typ  types.ShardIteratorType
		seq  string
		want string
	}{
		{types.ShardIteratorTypeAtSequenceNumber, seqs[3], "r3,r4"},
		{types.ShardIteratorTypeAfterSequenceNumber, seqs[3], "r4,r5"},
		{types.ShardIteratorTypeLatest, "", ""},
	} {
		if got := dataOf(e.get(e.iter("p", "shardId-000000000000", c.typ, c.seq), 2).Records); got != c.want {
			t.Errorf("%s %s: got %q want %q", c.typ, c.seq, got, c.want)
		}
	}

	// AT_TIMESTAMP: records put 10 s later.
	e.clock.Advance(10 * time.Second)
	later := e.clock.Now()
	e.put("p", "k", []byte("t1"))
	e.put("p", "k", []byte("t2"))
	ts, err := e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("p"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(later)})
	if err != nil {
		t.Fatal(err)
	}
	if got := dataOf(e.get(ts.ShardIterator, 0).Records); got != "t1,t2" {
		t.Fatalf("AT_TIMESTAMP got %q", got)
	}

	// Error cases.
	_, err = e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("p"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(e.clock.Now().Add(time.Hour))})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("nope"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("p"), ShardId: aws.String("shardId-000000000007"), ShardIteratorType: types.ShardIteratorTypeLatest})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("p"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "SOMEWHERE"})
	wantCode(t, err, errValidation)
	_, err = e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("p"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("999999")})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("p"), PartitionKey: aws.String(strings.Repeat("k", 257)), Data: []byte("x")})
	wantCode(t, err, errValidation)
	_, err = e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("p"), PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String("-1")})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("p"), PartitionKey: aws.String("k"), Data: bytes.Repeat([]byte("x"), 1<<20+1)})
	wantCode(t, err, errInvalidArgument)
}

func TestIteratorErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	e.createStream("i", 1)
	e.put("i", "k", []byte("a"))
	it := e.iter("i", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")

	_, err := e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("not-an-iterator")})
	wantCode(t, err, errInvalidArgument)
	// Change one character in the middle (the payload) and the last one (the MAC).
	for _, pos := range []int{len(*it) / 2, len(*it) - 1} {
		b := []byte(*it)
		if b[pos] == 'A' {
			b[pos] = 'B'
		} else {
			b[pos] = 'A'
		}
		_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(string(b))})
		wantCode(t, err, errInvalidArgument)
	}
	// An iterator signed with another key is as good as forged.
	other := mustNew(t, Config{}, e.store, Options{Clock: e.clock.Now, Secret: []byte("another key")})
	forged := other.sign.encodeIterator(iterator{Issued: e.clock.Now().UnixMilli(), Stream: "i", Shard: "shardId-000000000000", Next: 1})
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(forged)})
	wantCode(t, err, errInvalidArgument)

	e.clock.Advance(4 * time.Minute)
	g := e.get(it, 0) // still valid
	e.clock.Advance(5*time.Minute + time.Second)
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, errExpiredIterator)
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: g.NextShardIterator})
	wantCode(t, err, errExpiredIterator)

	// An iterator of a deleted stream stays dead when the name is reused.
	it = e.iter("i", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
	if _, err := e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("i")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, errResourceNotFound)
	e.clock.Advance(time.Second)
	e.createStream("i", 1)
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(10001)})
	wantCode(t, err, errValidation)
}

func TestClosedShardEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	e.createStream("c", 1)
	for i := range 3 {
		e.put("c", fmt.Sprint(i), []byte(fmt.Sprint("p", i)))
	}
	parent := "shardId-000000000000"
	it := e.iter("c", parent, types.ShardIteratorTypeTrimHorizon, "")
	itLast := e.iter("c", parent, types.ShardIteratorTypeLatest, "")
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("c"), ShardToSplit: aws.String(parent),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	// Reading page by page: records with an iterator, then the end.
	g := e.get(it, 2)
	if dataOf(g.Records) != "p0,p1" || g.NextShardIterator == nil || len(g.ChildShards) != 0 {
		t.Fatalf("page 1: %q next=%v children=%v", dataOf(g.Records), g.NextShardIterator, g.ChildShards)
	}
	g = e.get(g.NextShardIterator, 2)
	if dataOf(g.Records) != "p2" || g.NextShardIterator != nil || len(g.ChildShards) != 2 {
		t.Fatalf("last page: %q next=%v children=%d", dataOf(g.Records), g.NextShardIterator, len(g.ChildShards))
	}
	for i, c := range g.ChildShards {
		if len(c.ParentShards) != 1 || c.ParentShards[0] != parent || c.HashKeyRange == nil {
			t.Fatalf("child %d = %+v", i, c)
		}
	}
	if aws.ToString(g.ChildShards[0].HashKeyRange.EndingHashKey) != "170141183460469231731687303715884105727" {
		t.Fatalf("child 0 range %+v", g.ChildShards[0].HashKeyRange)
	}
	// An iterator already at the end gets no records, no iterator, the children.
	g = e.get(itLast, 0)
	if len(g.Records) != 0 || g.NextShardIterator != nil || len(g.ChildShards) != 2 {
		t.Fatalf("LATEST on closed shard: %d records next=%v children=%d", len(g.Records), g.NextShardIterator, len(g.ChildShards))
	}
	// New records go to the children, numbered after the parent's last.
	out := e.put("c", "0", []byte("c0"))
	if aws.ToString(out.ShardId) == parent || aws.ToString(out.SequenceNumber) != shards.FormatSeq(aws.ToString(out.ShardId), 4) {
		t.Fatalf("put after split: %s %s", aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber))
	}
}

func TestPutRecordsPartialFailure(t *testing.T) {
	// A stream whose shards take one record at a time and reject the rest:
	// the test clock never advances, so the buckets never refill.
	e := newEnv(t, envOptions{streams: []shards.StreamConfig{{Name: "thr", Shards: 2,
		Rate: shards.RateConfig{RecordsPerSec: 10, OnLimit: shards.OnLimitReject}}}})
	ctx := e.ctx()
	lo, hi := "1", "300000000000000000000000000000000000000" // shard 0, shard 1
	entry := func(d, ehk string) types.PutRecordsRequestEntry {
		return types.PutRecordsRequestEntry{Data: []byte(d), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(ehk)}
	}
	// Spend shard 0's allowance, then send a batch over both shards:
	// shard 0's entries fail, shard 1's succeeds, order and length kept.
	if _, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("thr"), PartitionKey: aws.String("k"), Data: []byte("0"), ExplicitHashKey: aws.String(lo)}); err != nil {
		t.Fatal(err)
	}
	out, err := e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("thr"), Records: []types.PutRecordsRequestEntry{
		entry("a", lo), entry("b", hi), entry("c", lo),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 2 || len(out.Records) != 3 {
		t.Fatalf("FailedRecordCount = %d of %d", aws.ToInt32(out.FailedRecordCount), len(out.Records))
	}
	for i, r := range out.Records {
		if i == 1 {
			if r.ErrorCode != nil || aws.ToString(r.ShardId) != "shardId-000000000001" || aws.ToString(r.SequenceNumber) != shards.FormatSeq("shardId-000000000001", 2) {
				// 2: the stream's log holds shard 0's first record at 1.
				t.Fatalf("entry 1 should succeed: %+v", r)
			}
			continue
		}
		if aws.ToString(r.ErrorCode) != errThroughputExceeded || aws.ToString(r.ErrorMessage) == "" || r.SequenceNumber != nil {
			t.Fatalf("entry %d should be throttled: %+v", i, r)
		}
	}
	// The single-record path reports the same condition as an exception.
	_, err = e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("thr"), PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String(hi)})
	wantCode(t, err, errThroughputExceeded)

	// Whole-request validation.
	_, err = e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("thr"), Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("")}}})
	wantCode(t, err, errValidation)
	many := make([]types.PutRecordsRequestEntry, 501)
	for i := range many {
		many[i] = types.PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: aws.String("k")}
	}
	_, err = e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("thr"), Records: many})
	wantCode(t, err, errValidation)
	big := make([]types.PutRecordsRequestEntry, 6)
	for i := range big {
		big[i] = types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte("x"), 1<<20-10), PartitionKey: aws.String("k")}
	}
	_, err = e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("thr"), Records: big})
	wantCode(t, err, errInvalidArgument)
	_, err = e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("nope"), Records: many[:1]})
	wantCode(t, err, errResourceNotFound)
}

func TestPutRecordsFullStream(t *testing.T) {
	e := newEnv(t, envOptions{streams: []shards.StreamConfig{{Name: "full", Shards: 1, Rate: unlimitedRate,
		MaxBytes: 20 * conf.KiB, SegmentSize: 4 * conf.KiB, MaxRecordSize: 2 * conf.KiB}}})
	ctx := e.ctx()
	var failed int32
	for range 20 {
		out, err := e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("full"), Records: []types.PutRecordsRequestEntry{
			{Data: bytes.Repeat([]byte("x"), 1500), PartitionKey: aws.String("k")}}})
		if err != nil {
			t.Fatal(err)
		}
		if out.FailedRecordCount != nil && *out.FailedRecordCount > 0 {
			failed += *out.FailedRecordCount
			if code := aws.ToString(out.Records[0].ErrorCode); code != errThroughputExceeded {
				t.Fatalf("full stream entry code %s", code)
			}
		}
	}
	if failed == 0 {
		t.Fatal("a stream at max_bytes took 30 KB")
	}
	_, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("full"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, errThroughputExceeded)
}

func TestReadLimits(t *testing.T) {
	e := newEnv(t, envOptions{limits: ReadLimits{CallsPerSec: 2}})
	ctx := e.ctx()
	e.createStream("l", 1)
	e.put("l", "k", []byte("x"))
	it := e.iter("l", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
	g := e.get(it, 0)
	g = e.get(g.NextShardIterator, 0)
	_, err := e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: g.NextShardIterator})
	wantCode(t, err, errThroughputExceeded)
	// Another reader of the same shard shares the limit.
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, errThroughputExceeded)
	// A long-poll is not counted against calls/s.
	var lp getRecordsWire
	if _, err := e.call(weirPrefix+"GetRecords", map[string]any{"ShardIterator": *it, "WaitMillis": 0}, &lp); err != nil || len(lp.Records) != 1 {
		t.Fatalf("long-poll under a spent call limit: %v %+v", err, lp)
	}
	e.clock.Advance(time.Second)
	e.get(g.NextShardIterator, 0)

	// Bytes: 1000 B/s, 400-byte records: the first call gets what the
	// budget allows, the next is refused until the budget refills.
	e2 := newEnv(t, envOptions{limits: ReadLimits{BytesPerSec: 1000}})
	e2.createStream("b", 1)
	for range 10 {
		e2.put("b", "k", bytes.Repeat([]byte("y"), 399))
	}
	it = e2.iter("b", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
	g = e2.get(it, 0)
	if n := len(g.Records); n < 1 || n > 3 {
		t.Fatalf("first call under 1000 B/s returned %d records of 400 B", n)
	}
	for {
		_, err = e2.kc.GetRecords(e2.ctx(), &kinesis.GetRecordsInput{ShardIterator: g.NextShardIterator})
		if err != nil {
			break
		}
	}
	wantCode(t, err, errThroughputExceeded)
	e2.clock.Advance(2 * time.Second)
	if g = e2.get(g.NextShardIterator, 0); len(g.Records) == 0 {
		t.Fatal("nothing after the byte budget refilled")
	}
}

// getRecordsWire decodes a WeirGateway GetRecords answer.
type getRecordsWire struct {
	Records []struct {
		SequenceNumber string
		Data           []byte
		PartitionKey   string
		Topic          string
		ClientId       string
		QoS            *int
		UserProperties []struct{ Key, Value string }
	}
	NextShardIterator  *string
	MillisBehindLatest int64
	ChildShards        []childShard
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("lp", 1)
	it := e.iter("lp", "shardId-000000000000", types.ShardIteratorTypeLatest, "")

	// Nothing arrives: the call waits about WaitMillis and returns empty.
	start := time.Now()
	var out getRecordsWire
	if _, err := e.call(weirPrefix+"GetRecords", map[string]any{"ShardIterator": *it, "WaitMillis": 150}, &out); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || len(out.Records) != 0 || out.NextShardIterator == nil {
		t.Fatalf("empty long-poll: %v %d records next=%v", el, len(out.Records), out.NextShardIterator)
	}

	// A record published while waiting wakes it.
	done := make(chan getRecordsWire, 1)
	go func() {
		var o getRecordsWire
		_, _ = e.call(weirPrefix+"GetRecords", map[string]any{"ShardIterator": *out.NextShardIterator, "WaitMillis": 10000}, &o)
		done <- o
	}()
	time.Sleep(50 * time.Millisecond)
	_, err := e.store.Append(e.ctx(), "lp", &shards.Record{Key: "dev1", Data: []byte("hello"), Topic: "devices/dev1/telemetry",
		ClientID: "dev1", QoS: 1, Props: []shards.UserProperty{{Key: "unit", Value: "°C"}}}, shards.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		if len(o.Records) != 1 || string(o.Records[0].Data) != "hello" {
			t.Fatalf("woken long-poll: %+v", o)
		}
		r := o.Records[0]
		if r.Topic != "devices/dev1/telemetry" || r.ClientId != "dev1" || r.QoS == nil || *r.QoS != 1 ||
			len(r.UserProperties) != 1 || r.UserProperties[0].Value != "°C" {
			t.Fatalf("MQTT fields: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll not woken by a commit")
	}

	// A split while waiting ends the wait with the children.
	it = e.iter("lp", "shardId-000000000000", types.ShardIteratorTypeLatest, "")
	go func() {
		var o getRecordsWire
		_, _ = e.call(weirPrefix+"GetRecords", map[string]any{"ShardIterator": *it, "WaitMillis": 10000}, &o)
		done <- o
	}()
	time.Sleep(50 * time.Millisecond)
	st, _ := e.store.Stream("lp")
	if err := st.Split("shardId-000000000000", shards.HashKey{Hi: 1 << 63}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		if o.NextShardIterator != nil || len(o.ChildShards) != 2 {
			t.Fatalf("long-poll over a split: %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll did not notice the split")
	}
	_, err = e.call(weirPrefix+"GetRecords", map[string]any{"ShardIterator": *it, "WaitMillis": 20001}, nil)
	wantCode(t, err, errValidation)
}

func TestProtocolErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("x", 1)
	_, err := e.call("Kinesis_20131202.Frobnicate", map[string]any{}, nil)
	wantCode(t, err, errUnknownOperation)
	_, err = e.call(kinesisPrefix+"PutRecord", map[string]any{"StreamName": "x", "PartitionKey": "k", "Data": 12}, nil)
	wantCode(t, err, errSerialization)
	_, err = e.call(kinesisPrefix+"PutRecord", map[string]any{"StreamName": "x", "PartitionKey": "k", "Data": "!!notbase64"}, nil)
	wantCode(t, err, errSerialization)
	_, err = e.call(kinesisPrefix+"PutRecord", map[string]any{"StreamName": "x", "PartitionKey": "k"}, nil)
	wantCode(t, err, errValidation)
	_, err = e.call(kinesisPrefix+"DescribeStream", map[string]any{}, nil)
	wantCode(t, err, errValidation)
	_, err = e.call(kinesisPrefix+"DescribeStream", map[string]any{"StreamName": "x", "StreamARN": "arn:aws:kinesis:local:000000000000:stream/y"}, nil)
	wantCode(t, err, errInvalidArgument)

	big := strings.Repeat("A", MaxBodyBytes+10)
	code, err := e.call(kinesisPrefix+"PutRecord", map[string]any{"StreamName": "x", "PartitionKey": "k", "Data": big}, nil)
	if code != 413 {
		t.Fatalf("oversized body: %d %v", code, err)
	}
	wantCode(t, err, errValidation)

	// SigV4 headers are accepted (the SDK client signs every request) and
	// an empty body reads as an empty object.
	_, err = e.call(kinesisPrefix+"ListStreams", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
}
