package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// eventWait bounds how long a test waits for one event: pushes take
// milliseconds, so this only keeps a broken test from hanging.
const eventWait = 10 * time.Second

// serve starts the Server's own listener (h2c and HTTP/1.1 on one port,
// as the daemon runs it) besides the env's httptest one.
func (e *env) serve() string {
	e.t.Helper()
	if err := e.srv.Start(); err != nil {
		e.t.Fatal(err)
	}
	return "http://" + e.srv.Addr().String()
}

// h2cClient speaks only HTTP/2 with prior knowledge.
func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

// http1Client is an HTTP/1.1 client for SubscribeToShard with
// aws-sdk-go-v2. It hides the request body's WriteTo from net/http:
// smithy-go (v1.28.9) closes the request body as soon as the response
// headers arrive, and its body's WriteTo then fails with io.EOF; when a
// response begins before net/http's writer has made its last read of the
// body (an event stream answers at once; on loopback that is often), the
// transport takes the EOF for a write failure and closes the connection
// under the event stream ("use of closed network connection").
func http1Client() *http.Client {
	return &http.Client{Transport: readOnlyBody{&http.Transport{}}}
}

type readOnlyBody struct{ next http.RoundTripper }

func (t readOnlyBody) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return t.next.RoundTrip(r)
}

func sdkClient(url string, hc *http.Client) *kinesis.Client {
	return kinesis.New(kinesis.Options{BaseEndpoint: aws.String(url), Region: "local", RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, "")})
}

func (e *env) register(stream, name string) string {
	e.t.Helper()
	out, err := e.kc.RegisterStreamConsumer(e.ctx(), &kinesis.RegisterStreamConsumerInput{
		StreamARN: aws.String(e.srv.streamARN(stream)), ConsumerName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	return *out.Consumer.ConsumerARN
}

// sub is one SubscribeToShard read through aws-sdk-go-v2.
type sub struct {
	t  testing.TB
	es *kinesis.SubscribeToShardEventStream
}

func subscribe(ctx context.Context, kc *kinesis.Client, arn, shard string, pos types.StartingPosition) (*sub, error) {
	out, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn),
		ShardId: aws.String(shard), StartingPosition: &pos})
	if err != nil {
		return nil, err
	}
	return &sub{es: out.GetStream()}, nil
}

// endpoint is where and how a test client connects.
type endpoint struct {
	name, url string
	hc        *http.Client
}

// subscribe uses a client of its own: aws-sdk-go-v2 (kinesis v1.56.13,
// smithy-go v1.28.9) decodes every event stream of a client with one
// shared decoder and buffer, so two subscriptions on one client race
// (go test -race reports it inside the SDK).
func (e *env) subscribe(ep endpoint, arn, shard string, pos types.StartingPosition) *sub {
	e.t.Helper()
	s, err := subscribe(e.ctx(), sdkClient(ep.url, ep.hc), arn, shard, pos)
	if err != nil {
		e.t.Fatalf("SubscribeToShard %s %s: %v", shard, pos.Type, err)
	}
	s.t = e.t
	e.t.Cleanup(func() { s.es.Close() })
	return s
}

// next returns the next event; ok=false when the stream ended (Err says
// how).
func (s *sub) next() (ev types.SubscribeToShardEvent, ok bool) {
	s.t.Helper()
	select {
	case v, open := <-s.es.Events():
		if !open {
			return ev, false
		}
		m, isEvent := v.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			s.t.Fatalf("unexpected event %T", v)
		}
		return m.Value, true
	case <-time.After(eventWait):
		s.t.Fatalf("no event within %s", eventWait)
		return ev, false
	}
}

// records reads events until n records arrived, checking that every event
// continues where the last record left off.
func (s *sub) records(n int) (recs []types.Record, last types.SubscribeToShardEvent) {
	s.t.Helper()
	for len(recs) < n {
		ev, ok := s.next()
		if !ok {
			s.t.Fatalf("stream ended after %d of %d records: %v", len(recs), n, s.es.Err())
		}
		if len(ev.Records) > 0 && (ev.ContinuationSequenceNumber == nil || *ev.ContinuationSequenceNumber != *ev.Records[len(ev.Records)-1].SequenceNumber) {
			s.t.Fatalf("ContinuationSequenceNumber %v, last record %s", aws.ToString(ev.ContinuationSequenceNumber), *ev.Records[len(ev.Records)-1].SequenceNumber)
		}
		recs = append(recs, ev.Records...)
		last = ev
	}
	if len(recs) != n {
		s.t.Fatalf("got %d records, want %d", len(recs), n)
	}
	return recs, last
}

// end waits for the stream to end and returns its error.
func (s *sub) end() error {
	s.t.Helper()
	for {
		if _, ok := s.next(); !ok {
			return s.es.Err()
		}
	}
}

func (e *env) putN(stream string, from, n int) []string {
	e.t.Helper()
	var seqs []string
	for i := from; i < from+n; i++ {
		seqs = append(seqs, *e.put(stream, "k", fmt.Appendf(nil, "r%d", i)).SequenceNumber)
	}
	return seqs
}

func checkData(t testing.TB, recs []types.Record, from int) {
	t.Helper()
	for i, r := range recs {
		if want := fmt.Sprintf("r%d", from+i); string(r.Data) != want {
			t.Fatalf("record %d is %q, want %q (%s)", i, r.Data, want, dataOf(recs))
		}
	}
}

// TestSubscribeToShard: aws-sdk-go-v2 over HTTP/1.1 (chunked) and over h2c
// gets records pushed in order as they are written, from every starting
// position, each event continuing where the last left off.
func TestSubscribeToShard(t *testing.T) {
	e := newEnv(t, envOptions{api: Config{Listen: "127.0.0.1:0"}})
	url := e.serve()
	const shard = "shardId-000000000000"
	for _, c := range []endpoint{{"http1", e.hs.URL, http1Client()}, {"h2c", url, h2cClient()}} {
		stream := "s-" + c.name
		e.createStream(stream, 1)
		arn := e.register(stream, "efo")
		s := e.subscribe(c, arn, shard, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
		first, ok := s.next()
		if !ok || len(first.Records) != 0 || first.ContinuationSequenceNumber == nil || first.MillisBehindLatest == nil {
			t.Fatalf("%s: first event %+v (open %v): want an empty event with a continuation", c.name, first, ok)
		}
		seqs := e.putN(stream, 0, 20)
		recs, _ := s.records(20)
		checkData(t, recs, 0)
		for i, r := range recs {
			if *r.SequenceNumber != seqs[i] || r.ApproximateArrivalTimestamp == nil || aws.ToString(r.PartitionKey) != "k" {
				t.Fatalf("%s: record %d: %+v, want sequence %s", c.name, i, r, seqs[i])
			}
		}
		s.es.Close()
		for _, p := range []struct {
			pos  types.StartingPosition
			from int
		}{
			{types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, 0},
			{types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: &seqs[5]}, 5},
			{types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: &seqs[5]}, 6},
			{types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(e.clock.Now().Add(-time.Hour))}, 0},
		} {
			e.clock.Advance(takeoverAfter) // the closed subscription may not have ended yet
			t.Logf("%s: %s", c.name, p.pos.Type)
			s := e.subscribe(c, arn, shard, p.pos)
			recs, _ := s.records(20 - p.from)
			checkData(t, recs, p.from)
			s.es.Close()
		}
	}
}
