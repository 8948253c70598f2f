package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/internal/promtest"
	"github.com/weir-gateway/weir/shards"
)

func TestConsumers(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	e.createStream("cs", 1)
	arn := "arn:aws:kinesis:local:000000000000:stream/cs"
	var cons []types.Consumer
	for _, n := range []string{"b", "a", "c"} {
		out, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		c := out.Consumer
		if c.ConsumerStatus != types.ConsumerStatusActive || !strings.HasPrefix(aws.ToString(c.ConsumerARN), arn+"/consumer/"+n+":") || c.ConsumerCreationTimestamp == nil {
			t.Fatalf("registered %+v", c)
		}
		cons = append(cons, *c)
	}
	_, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("a")})
	wantCode(t, err, errResourceInUse)
	_, err = e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn + "x"), ConsumerName: aws.String("a")})
	wantCode(t, err, errResourceNotFound)
	_, err = e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("a/b")})
	wantCode(t, err, errValidation)

	d, err := e.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: cons[0].ConsumerARN})
	if err != nil || aws.ToString(d.ConsumerDescription.ConsumerName) != "b" || aws.ToString(d.ConsumerDescription.StreamARN) != arn {
		t.Fatalf("describe by ARN: %+v %v", d, err)
	}
	d, err = e.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c")})
	if err != nil || aws.ToString(d.ConsumerDescription.ConsumerARN) != aws.ToString(cons[2].ConsumerARN) {
		t.Fatalf("describe by name: %+v %v", d, err)
	}
	_, err = e.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("zz")})
	wantCode(t, err, errResourceNotFound)

	var names []string
	in := &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn), MaxResults: aws.Int32(2)}
	for range 4 {
		out, err := e.kc.ListStreamConsumers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out.Consumers {
			names = append(names, aws.ToString(c.ConsumerName))
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn), NextToken: out.NextToken}
	}
	if fmt.Sprint(names) != "[a b c]" {
		t.Fatalf("consumers %v", names)
	}
	if _, err := e.kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: cons[1].ConsumerARN}); err != nil {
		t.Fatal(err)
	}
	_, err = e.kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("a")})
	wantCode(t, err, errResourceNotFound)
	sum, _ := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("cs")})
	if aws.ToInt32(sum.StreamDescriptionSummary.ConsumerCount) != 2 {
		t.Fatalf("ConsumerCount %d", aws.ToInt32(sum.StreamDescriptionSummary.ConsumerCount))
	}
}

type checkpointsWire struct {
	StreamName  string
	Checkpoints []shardCheckpoint
}

func TestCheckpoints(t *testing.T) {
	e := newEnv(t, envOptions{streams: []shards.StreamConfig{{Name: "ck", Shards: 2, Rate: unlimitedRate,
		Retention: conf.Duration(time.Hour), SegmentSize: 4 * conf.KiB, MaxRecordSize: 2 * conf.KiB}}})
	ctx := e.ctx()
	if _, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String("arn:aws:kinesis:local:000000000000:stream/ck"), ConsumerName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	const s0 = "shardId-000000000000"
	// 30 records of 1000 bytes on shard 0: several 4 KiB segments.
	for range 30 {
		if _, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("ck"), PartitionKey: aws.String("k"),
			ExplicitHashKey: aws.String("0"), Data: bytes.Repeat([]byte("z"), 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(shard, seq string) error {
		_, err := e.call(weirPrefix+"CommitCheckpoint", map[string]string{"StreamName": "ck", "ConsumerName": "app", "ShardId": shard, "SequenceNumber": seq}, nil)
		return err
	}
	get := func() map[string]shardCheckpoint {
		t.Helper()
		var out checkpointsWire
		if _, err := e.call(weirPrefix+"GetCheckpoints", map[string]string{"StreamName": "ck", "ConsumerName": "app"}, &out); err != nil {
			t.Fatal(err)
		}
		m := map[string]shardCheckpoint{}
		for _, c := range out.Checkpoints {
			m[c.ShardId] = c
		}
		return m
	}
	if c := get(); c[s0].Status != checkpointNone || c[s0].LastSequenceNumber != shards.FormatSeq(s0, 30) || c["shardId-000000000001"].LastSequenceNumber != "" {
		t.Fatalf("before any commit: %+v", c)
	}
	if err := commit(s0, shards.FormatSeq(s0, 5)); err != nil {
		t.Fatal(err)
	}
	if c := get()[s0]; c.Status != checkpointOK || c.SequenceNumber != shards.FormatSeq(s0, 5) || c.RecordsLost != 0 {
		t.Fatalf("after commit: %+v", c)
	}
	wantCode(t, commit(s0, shards.FormatSeq(s0, 31)), errInvalidArgument) // beyond the last record
	wantCode(t, commit(s0, "x"), errValidation)
	wantCode(t, commit(s0, "5"), errInvalidArgument) // a version 1 number on a stream made under version 2
	wantCode(t, commit("shardId-000000000009", shards.FormatSeq("shardId-000000000009", 1)), errResourceNotFound)
	_, err := e.call(weirPrefix+"CommitCheckpoint", map[string]string{"StreamName": "ck", "ConsumerName": "nobody", "ShardId": s0, "SequenceNumber": shards.FormatSeq(s0, 1)}, nil)
	wantCode(t, err, errResourceNotFound)
	_, err = e.call(weirPrefix+"GetCheckpoints", map[string]string{"StreamName": "nope", "ConsumerName": "app"}, nil)
	wantCode(t, err, errResourceNotFound)

	// Retention deletes the old segments: the checkpoint is behind the trim
	// horizon and reads as TRIMMED with the count of lost records.
	e.clock.Advance(2 * time.Hour)
	// A fresh record keeps the segment being written alive: retention
	// closes it (its oldest record is past retention) but may not delete it.
	if _, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("ck"), PartitionKey: aws.String("k"),
		ExplicitHashKey: aws.String("0"), Data: []byte("fresh")}); err != nil {
		t.Fatal(err)
	}
	e.store.EnforceRetention()
	st, _ := e.store.Stream("ck")
	sh, _ := st.Shard(s0)
	th := sh.TrimHorizon()
	if th <= 6 {
		t.Fatalf("retention trimmed nothing (trim horizon %d)", th)
	}
	c := get()[s0]
	if c.Status != checkpointTrimmed || c.RecordsLost != th-1-5 || c.SequenceNumber != shards.FormatSeq(s0, 5) {
		t.Fatalf("trimmed checkpoint %+v (trim horizon %d)", c, th)
	}
	// A Kinesis iterator at a trimmed position continues at the trim horizon.
	it := e.iter("ck", s0, types.ShardIteratorTypeAfterSequenceNumber, shards.FormatSeq(s0, 5))
	g := e.get(it, 1)
	if len(g.Records) != 1 || aws.ToString(g.Records[0].SequenceNumber) != shards.FormatSeq(s0, th) {
		t.Fatalf("read from a trimmed position: %+v (trim horizon %d)", g.Records, th)
	}
	// Committing past the loss makes it OK again.
	if err := commit(s0, shards.FormatSeq(s0, th)); err != nil {
		t.Fatal(err)
	}
	if c := get()[s0]; c.Status != checkpointOK {
		t.Fatalf("after committing past the loss %+v", c)
	}

	// Checkpoints survive a gateway restart.
	e.restart(envOptions{})
	if c := get()[s0]; c.Status != checkpointOK || c.SequenceNumber != shards.FormatSeq(s0, th) {
		t.Fatalf("after restart %+v", c)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()
	e.createStream("m", 1)
	if _, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String("arn:aws:kinesis:local:000000000000:stream/m"), ConsumerName: aws.String("dash")}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		e.put("m", "k", []byte("hello"))
	}
	e.get(e.iter("m", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, ""), 0)
	if _, err := e.call(weirPrefix+"CommitCheckpoint", map[string]string{"StreamName": "m", "ConsumerName": "dash", "ShardId": "shardId-000000000000", "SequenceNumber": shards.FormatSeq("shardId-000000000000", 2)}, nil); err != nil {
		t.Fatal(err)
	}
	m := promtest.Scrape(t, e.hc, e.hs.URL+"/metrics")
	sh := []string{"stream", "m", "shard", "shardId-000000000000"}
	m.Want(t, 5, "weir_shard_last_sequence", sh...)
	m.Want(t, 5, "weir_shard_records", sh...)
	m.Want(t, 1, "weir_shard_trim_horizon_sequence", sh...)
	m.Want(t, 3, "weir_consumer_lag_records", append(sh, "consumer", "dash")...)
	m.Want(t, 5, "weir_api_read_records_total", sh...)
	m.Want(t, 5, "weir_api_requests_total", "op", "PutRecord", "code", "OK")
	m.Want(t, 5, "weir_api_request_duration_seconds", "op", "PutRecord")
	// Five sequential puts: five commit groups of the stream's log.
	m.Want(t, 5, "weir_stream_commit_groups_total", "stream", "m")
	m.Want(t, 5, "weir_shard_appended_records_total", sh...)
	// A group smaller than the rest of its page is not padded.
	m.Want(t, 0, "weir_stream_pad_bytes_total", "stream", "m")
	for name, typ := range map[string]string{"weir_stream_syncs_total": "counter", "weir_consumer_lag_seconds": "gauge",
		"weir_api_request_duration_seconds": "histogram"} {
		if got := m.Type(name); got != typ {
			t.Errorf("%s is a %q, want %s", name, got, typ)
		}
	}
	if probs, err := m.Lint(); err != nil || len(probs) > 0 {
		t.Errorf("promlint: %v %q", err, probs)
	}

	resp, err := e.hc.Get(e.hs.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}
}
