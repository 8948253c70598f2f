package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/eventstream"
	"github.com/fxamacker/cbor/v2"

	"github.com/weir-gateway/weir/integration/kinesalite"
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

// TestSubscribeToShardResumeAcrossRestart: a consumer that resubscribes
// with AFTER_SEQUENCE_NUMBER and its last ContinuationSequenceNumber after
// a gateway restart gets every record exactly once, including those
// written while it was away.
func TestSubscribeToShardResumeAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOptions{dir: dir})
	e.createStream("s", 1)
	arn := e.register("s", "efo")
	const shard = "shardId-000000000000"
	ep := endpoint{"http1", e.hs.URL, http1Client()}
	s := e.subscribe(ep, arn, shard, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	e.putN("s", 0, 30)
	recs, last := s.records(30)
	checkData(t, recs, 0)
	cont := *last.ContinuationSequenceNumber
	e.restart(envOptions{dir: dir})
	e.putN("s", 30, 20) // while no one is subscribed
	ep.url = e.hs.URL
	s = e.subscribe(ep, arn, shard, types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: &cont})
	e.putN("s", 50, 10)
	recs, _ = s.records(60 - 30)
	checkData(t, recs, 30)
	// Nothing more: the next event is a heartbeat at the earliest.
	select {
	case v := <-s.es.Events():
		if ev, ok := v.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok && len(ev.Value.Records) > 0 {
			t.Fatalf("duplicate records after resume: %s", dataOf(ev.Value.Records))
		}
	case <-time.After(100 * time.Millisecond):
	}
}

// TestSubscribeToShardResourceInUse: one subscription per consumer and
// shard. A second within 5 s is refused; a later one takes over and the
// first ends with a ResourceInUseException event. Another consumer, or
// another shard, is independent.
func TestSubscribeToShardResourceInUse(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("s", 2)
	a, b := e.register("s", "a"), e.register("s", "b")
	ep := endpoint{"http1", e.hs.URL, http1Client()}
	latest := types.StartingPosition{Type: types.ShardIteratorTypeLatest}
	first := e.subscribe(ep, a, "shardId-000000000000", latest)
	first.next()
	_, err := subscribe(e.ctx(), sdkClient(ep.url, ep.hc), a, "shardId-000000000000", latest)
	wantCode(t, err, errResourceInUse)
	e.subscribe(ep, a, "shardId-000000000001", latest).next()
	e.subscribe(ep, b, "shardId-000000000000", latest).next()

	e.clock.Advance(takeoverAfter)
	second := e.subscribe(ep, a, "shardId-000000000000", latest)
	second.next()
	err = first.end()
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("first subscription ended with %v, want ResourceInUseException", err)
	}
}

// TestSubscribeToShardChildShards: a subscription to a shard that is split
// gets its last records, then an event with ChildShards and no
// ContinuationSequenceNumber, and ends; the children continue.
func TestSubscribeToShardChildShards(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("c", 1)
	arn := e.register("c", "efo")
	parent := "shardId-000000000000"
	ep := endpoint{"http1", e.hs.URL, http1Client()}
	s := e.subscribe(ep, arn, parent, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	e.putN("c", 0, 3)
	recs, _ := s.records(3)
	checkData(t, recs, 0)
	if _, err := e.kc.SplitShard(e.ctx(), &kinesis.SplitShardInput{StreamName: aws.String("c"), ShardToSplit: aws.String(parent),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	ev, ok := s.next()
	if !ok || ev.ContinuationSequenceNumber != nil || len(ev.ChildShards) != 2 || len(ev.Records) != 0 {
		t.Fatalf("end of shard: %+v (open %v), want ChildShards and no continuation", ev, ok)
	}
	for _, c := range ev.ChildShards {
		if len(c.ParentShards) != 1 || c.ParentShards[0] != parent {
			t.Fatalf("child %+v", c)
		}
	}
	if err := s.end(); err != nil {
		t.Fatalf("stream after the shard's end: %v", err)
	}
	// Subscribing to the closed shard again: straight to the end.
	e.clock.Advance(takeoverAfter)
	s = e.subscribe(ep, arn, parent, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	if ev, ok := s.next(); !ok || len(ev.ChildShards) != 2 {
		t.Fatalf("LATEST on a closed shard: %+v", ev)
	}
	// A child gets what is written now (the partition key "k" hashes
	// to one of them).
	out := e.put("c", "k", []byte("child"))
	s = e.subscribe(ep, arn, *out.ShardId, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	if recs, _ := s.records(1); string(recs[0].Data) != "child" {
		t.Fatalf("child shard: %s", dataOf(recs))
	}
}

// TestSubscribeToShardExpiry: a subscription ends by itself after its
// life (5 minutes; shortened here), without an error.
func TestSubscribeToShardExpiry(t *testing.T) {
	e := newEnv(t, envOptions{subscriptionLife: 300 * time.Millisecond})
	e.createStream("s", 1)
	arn := e.register("s", "efo")
	start := time.Now()
	s := e.subscribe(endpoint{"http1", e.hs.URL, http1Client()}, arn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	if err := s.end(); err != nil {
		t.Fatalf("expired subscription: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("ended after %s, before its life", d)
	}
}

// TestSubscribeToShardErrors: refusals before the stream (HTTP errors) and
// ends during it (exception events).
func TestSubscribeToShardErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("s", 1)
	arn := e.register("s", "efo")
	ep := endpoint{"http1", e.hs.URL, http1Client()}
	const shard = "shardId-000000000000"
	latest := types.StartingPosition{Type: types.ShardIteratorTypeLatest}
	for _, c := range []struct {
		arn, shard string
		pos        types.StartingPosition
		want       string
	}{
		{e.srv.streamARN("s") + "/consumer/nobody:1", shard, latest, errResourceNotFound},
		{e.srv.streamARN("gone") + "/consumer/efo:1", shard, latest, errResourceNotFound},
		{arn, "shardId-000000000009", latest, errResourceNotFound},
		{arn, shard, types.StartingPosition{Type: "SOMEWHERE"}, errValidation},
		{arn, shard, types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber}, errInvalidArgument},
		{arn, shard, types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String("99")}, errInvalidArgument},
		{"not-an-arn", shard, latest, errInvalidArgument},
	} {
		_, err := subscribe(e.ctx(), sdkClient(ep.url, ep.hc), c.arn, c.shard, c.pos)
		if errCode(err) != c.want {
			t.Errorf("%s %s %s: %v, want %s", c.arn, c.shard, c.pos.Type, err, c.want)
		}
	}
	// Deregistered while subscribed: ResourceNotFoundException event at
	// the next wake-up (here, a record).
	s := e.subscribe(ep, arn, shard, latest)
	s.next()
	if _, err := e.kc.DeregisterStreamConsumer(e.ctx(), &kinesis.DeregisterStreamConsumerInput{ConsumerARN: &arn}); err != nil {
		t.Fatal(err)
	}
	e.put("s", "k", []byte("x"))
	var nf *types.ResourceNotFoundException
	if err := s.end(); !errors.As(err, &nf) {
		t.Fatalf("after deregistration: %v, want ResourceNotFoundException", err)
	}
}

// TestSubscribeToShardOwnBudget: each registered consumer reads within a
// byte budget of its own, apart from the one GetRecords readers share.
func TestSubscribeToShardOwnBudget(t *testing.T) {
	e := newEnv(t, envOptions{limits: ReadLimits{CallsPerSec: 5, BytesPerSec: 1000}})
	e.createStream("s", 1)
	for i := range 10 {
		e.put("s", "k", bytes.Repeat([]byte{'a' + byte(i)}, 299)) // 300 bytes with the key
	}
	// GetRecords spends the shared budget.
	if g := e.get(e.iter("s", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, ""), 0); len(g.Records) == 0 || len(g.Records) > 4 {
		t.Fatalf("GetRecords read %d records with a 1000-byte budget", len(g.Records))
	}
	ep := endpoint{"http1", e.hs.URL, http1Client()}
	for _, name := range []string{"a", "b"} {
		s := e.subscribe(ep, e.register("s", name), "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		ev, _ := s.next()
		if n := len(ev.Records); n == 0 || n > 4 {
			t.Fatalf("consumer %s: first event has %d records, want 1..4 (its own 1000 bytes)", name, n)
		}
		// The rest comes as the budget refills (the test clock moves it).
		got := len(ev.Records)
		for got < 10 {
			e.clock.Advance(time.Second)
			ev, ok := s.next()
			if !ok {
				t.Fatalf("consumer %s: stream ended: %v", name, s.es.Err())
			}
			if len(ev.Records) > 4 {
				t.Fatalf("consumer %s: %d records in one second of budget", name, len(ev.Records))
			}
			got += len(ev.Records)
		}
	}
}

// TestSubscribeToShardRawWire reads the wire itself over h2c: HTTP/2,
// the event-stream content type, CRC-checked frames with the Kinesis
// headers, and CBOR payloads for a CBOR request (the Java SDK's format).
func TestSubscribeToShardRawWire(t *testing.T) {
	e := newEnv(t, envOptions{api: Config{Listen: "127.0.0.1:0"}})
	url := e.serve()
	e.createStream("s", 1)
	arn := e.register("s", "efo")
	e.putN("s", 0, 2)
	body, _ := cbor.Marshal(map[string]any{"ConsumerARN": arn, "ShardId": "shardId-000000000000",
		"StartingPosition": map[string]any{"Type": "TRIM_HORIZON"}})
	req, _ := http.NewRequestWithContext(e.ctx(), http.MethodPost, url+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentTypeCBOR)
	req.Header.Set("X-Amz-Target", kinesisPrefix+"SubscribeToShard")
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != contentTypeEventStream {
		t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dec := eventstream.NewDecoder()
	msg, err := dec.Decode(resp.Body, nil)
	if err != nil || msg.Headers.Get(":event-type").String() != "initial-response" || msg.Headers.Get(":message-type").String() != "event" {
		t.Fatalf("initial response %+v: %v", msg.Headers, err)
	}
	msg, err = dec.Decode(resp.Body, nil)
	if err != nil || msg.Headers.Get(":event-type").String() != "SubscribeToShardEvent" || msg.Headers.Get(":content-type").String() != contentTypeCBOR {
		t.Fatalf("event %+v: %v", msg.Headers, err)
	}
	var ev struct {
		Records []struct {
			Data           []byte
			SequenceNumber string
		}
		ContinuationSequenceNumber string
	}
	if err := cbor.Unmarshal(msg.Payload, &ev); err != nil || len(ev.Records) != 2 || string(ev.Records[1].Data) != "r1" ||
		ev.ContinuationSequenceNumber != ev.Records[1].SequenceNumber {
		t.Fatalf("CBOR event %+v: %v", ev, err)
	}
}

// TestJSSDKEveryOperation runs every Kinesis operation the gateway serves
// through the JS SDK v3 as shipped — its default handler talks HTTP/2 —
// against the plain listener (h2c) and a TLS one (h2 by ALPN).
func TestJSSDKEveryOperation(t *testing.T) {
	if lookTool(t, "node") == "" {
		return
	}
	modules, err := kinesalite.NodeModules()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(modules + "/@aws-sdk/client-kinesis"); err != nil {
		t.Fatalf("@aws-sdk/client-kinesis is not installed in %s (bash scripts/install-deps.sh): %v", modules, err)
	}
	keys := t.TempDir()
	writeStreamKey(t, keys, "alias/edge", 1)
	e := newEnv(t, envOptions{api: Config{Listen: "127.0.0.1:0"}, keysDir: keys})
	plain := e.serve()
	certFile, keyFile, _ := writeCert(t, t.TempDir(), "weir")
	tlsSrv := mustNew(t, Config{Listen: "127.0.0.1:0", TLS: TLSConfig{CertFile: certFile, KeyFile: keyFile}}, e.store,
		Options{Clock: e.clock.Now, Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err := tlsSrv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tlsSrv.Close(context.Background()) })
	var want []string
	for target := range e.srv.ops {
		if name, ok := strings.CutPrefix(target, kinesisPrefix); ok {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	for _, url := range []string{plain, "https://" + tlsSrv.Addr().String()} {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		cmd := exec.CommandContext(ctx, "node", "testdata/jssdk_ops.js", url, testKeyID, testSecret)
		cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "NODE_EXTRA_CA_CERTS="+certFile)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		raw, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%s: node: %v\n%s", url, err, stderr.Bytes())
		}
		var got struct {
			Handler, Fatal, SecondSubscription, MissingStream, GetRecords, Mode, Encryption, Tags, Monitoring string
			ShardLimit                                                                                        int
			Ops                                                                                               map[string]string
			Streams, Consumers                                                                                []string
			SummaryOpen, ListShards, PutFailed, Updated                                                       int
			ConsumerStatus                                                                                    string
			Subscribed                                                                                        struct{ Data, Cont, Last string }
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: node printed %q: %v\n%s", url, raw, err, stderr.Bytes())
		}
		if got.Fatal != "" {
			t.Fatalf("%s: %s (ops so far %v)", url, got.Fatal, got.Ops)
		}
		if got.Handler != "NodeHttp2Handler" {
			t.Errorf("%s: the SDK used %s, not its HTTP/2 default", url, got.Handler)
		}
		for _, name := range want {
			if got.Ops[name] != "ok" {
				t.Errorf("%s: %s: %q (add it to testdata/jssdk_ops.js if it is new)", url, name, got.Ops[name])
			}
		}
		if fmt.Sprint(got.Streams) != "[js]" || got.SummaryOpen != 2 || got.ListShards != 2 || got.ConsumerStatus != "ACTIVE" ||
			fmt.Sprint(got.Consumers) != "[efo]" || got.PutFailed != 0 || got.GetRecords != "a,b,c,d" || got.Updated != 4 || got.Mode != "ON_DEMAND" || got.Encryption != "KMS" ||
			got.Tags != "site=plant-1" || got.ShardLimit != 1024 || got.Monitoring != "IncomingBytes" {
			t.Errorf("%s: answers %+v", url, got)
		}
		if got.Subscribed.Data != "a,b,c,d" || got.Subscribed.Cont != got.Subscribed.Last {
			t.Errorf("%s: SubscribeToShard read %+v", url, got.Subscribed)
		}
		if got.SecondSubscription != errResourceInUse || got.MissingStream != errResourceNotFound {
			t.Errorf("%s: second subscription %s, missing stream %s", url, got.SecondSubscription, got.MissingStream)
		}
		e.clock.Advance(takeoverAfter)
	}
}

func eventstreamDecoder() *eventstream.Decoder { return eventstream.NewDecoder() }

func decodeJSON(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestJSSDKResumeAcrossRestart: a JS SDK v3 consumer as shipped (default
// handler, so h2c) reads a subscription, sees it end when the gateway
// restarts on the same port, and resubscribes with the same client,
// AFTER_SEQUENCE_NUMBER its last ContinuationSequenceNumber: it gets the
// records written while the gateway was down and those written after,
// each once and in order.
func TestJSSDKResumeAcrossRestart(t *testing.T) {
	if lookTool(t, "node") == "" {
		return
	}
	modules, err := kinesalite.NodeModules()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := newEnv(t, envOptions{dir: dir, api: Config{Listen: "127.0.0.1:0"}})
	url := e.serve()
	e.createStream("s", 1)
	arn := e.register("s", "efo")
	e.putN("s", 0, 30)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "testdata/jssdk_resume.js", url, testKeyID, testSecret, arn, "shardId-000000000000", "30")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	lines := json.NewDecoder(stdout)
	var got struct {
		Fatal, First, Second, Cont, Ended, Extra string
		Resubscribed                             bool
	}
	read := func(what string) {
		t.Helper()
		got.Fatal = ""
		if err := lines.Decode(&got); err != nil {
			t.Fatalf("waiting for %s: %v\n%s", what, err, stderr.Bytes())
		}
		if got.Fatal != "" {
			t.Fatalf("waiting for %s: node: %s\n%s", what, got.Fatal, stderr.Bytes())
		}
	}
	want := func(from, n int) string {
		var s []string
		for i := from; i < from+n; i++ {
			s = append(s, fmt.Sprintf("r%d", i))
		}
		return strings.Join(s, ",")
	}

	read("the first 30 records")
	if got.First != want(0, 30) {
		t.Fatalf("first subscription read %s", got.First)
	}
	cont := got.Cont
	e.restart(envOptions{dir: dir, api: Config{Listen: strings.TrimPrefix(url, "http://")}})
	read("the end of the first subscription")
	if got.Extra != "" {
		t.Fatalf("first subscription read more than was written: %s", got.Extra)
	}
	t.Logf("first subscription ended with %s at %s", got.Ended, cont)
	e.putN("s", 30, 20) // while the gateway's listener is down
	if e.serve() != url {
		t.Fatalf("the gateway came back on another address")
	}
	if _, err := io.WriteString(stdin, "resume\n"); err != nil {
		t.Fatal(err)
	}
	read("the resubscription")
	e.putN("s", 50, 10)
	if _, err := io.WriteString(stdin, "read 30\n"); err != nil {
		t.Fatal(err)
	}
	read("the resumed records")
	if got.Second != want(30, 30) {
		t.Fatalf("after the restart the JS SDK read %s, want r30..r59 once each", got.Second)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
}
