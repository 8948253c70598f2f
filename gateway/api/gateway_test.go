package api

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-gateway/weir/internal/promtest"
	"github.com/weir-gateway/weir/shards"
)

// serveWith puts a second server with extra options over e's store.
func serveWith(t *testing.T, e *env, opts Options) *httptest.Server {
	t.Helper()
	opts.Clock = e.clock.Now
	srv := mustNew(t, Config{}, e.store, opts)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		hs.CloseClientConnections()
		hs.Close()
	})
	return hs
}

func TestDescribeGateway(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("a", 2)
	e.createStream("b", 1)
	ctx := e.ctx()
	for i := range 30 {
		if _, err := e.store.Append(ctx, "a", &shards.Record{Key: fmt.Sprintf("k%d", i), Data: []byte("0123456789")}, shards.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := e.store.Stream("a")
	infos := st.Shards()
	sh0, _ := st.Shard(infos[0].ID)
	recs0, _, err := sh0.Read(1, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	n0 := int64(len(recs0))
	if n0 < 3 || n0 == 30 {
		t.Fatalf("keys hashed badly: %d of 30 in shard 0", n0)
	}
	// The shards' sequence numbers share the stream's log.
	second, last0 := recs0[1].Seq, recs0[n0-1].Seq
	// A consumer 2 records into shard 0, none into shard 1; a forwarder
	// watermark of a forwarder no longer configured; and a running one
	// reported by the daemon that has not committed yet.
	cks := e.store.Checkpoints()
	if _, err := cks.Register("a", "dash"); err != nil {
		t.Fatal(err)
	}
	if err := cks.Commit("a", "dash", infos[0].ID, second); err != nil {
		t.Fatal(err)
	}
	if err := cks.Commit("a", shards.ForwarderPrefix+"old", infos[0].ID, last0); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Second)
	hs := serveWith(t, e, Options{Forwarders: func() []ForwarderStatus {
		return []ForwarderStatus{{Stream: "a", TargetStream: "cloud", Consumer: shards.ForwarderPrefix + "cloud",
			Records: 30, Bytes: 300, OldestAge: 90 * time.Second, State: "backoff", LastError: "connection refused", Lost: 1}}
	}})
	e.hs, hs = hs, e.hs // e.call posts to e.hs
	defer func() { e.hs = hs }()

	var out DescribeGatewayOutput
	if _, err := e.call(weirPrefix+"DescribeGateway", map[string]any{}, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Streams) != 2 || out.Streams[0].StreamName != "a" || out.Streams[1].StreamName != "b" {
		t.Fatalf("streams %+v", out.Streams)
	}
	a := out.Streams[0]
	if a.OpenShardCount != 2 || a.ClosedShardCount != 0 || a.Records != 30 || a.Bytes <= 0 || a.RetentionSeconds != 86400 ||
		a.RetentionPeriodHours != 24 || len(a.Shards) != 2 || a.Shards[0].LastSequenceNumber != shards.FormatSeq(a.Shards[0].ShardId, last0) ||
		a.Shards[0].TrimHorizonSequenceNumber != shards.FormatSeq(a.Shards[0].ShardId, 1) {
		t.Fatalf("stream a: %+v", a)
	}
	if len(a.Consumers) != 3 {
		t.Fatalf("consumers %+v", a.Consumers)
	}
	cloud, dash, old := a.Consumers[1], a.Consumers[0], a.Consumers[2] // by name: dash, forwarder:cloud, forwarder:old
	if dash.ConsumerName != "dash" || dash.Kind != "consumer" || dash.LagRecords != 28 || dash.ConsumerARN == "" ||
		dash.LagSeconds < 10 || dash.Shards[0].SequenceNumber != shards.FormatSeq(dash.Shards[0].ShardId, second) || dash.Shards[0].LagRecords != n0-2 || dash.Shards[1].SequenceNumber != "" {
		t.Fatalf("dash: %+v", dash)
	}
	if cloud.ConsumerName != "forwarder:cloud" || cloud.Kind != "forwarder" || cloud.TargetStream != "cloud" || cloud.LagRecords != 30 ||
		cloud.LagBytes != 300 || cloud.LagSeconds != 90 || cloud.State != "backoff" || cloud.LastError != "connection refused" || cloud.RecordsLost != 1 {
		t.Fatalf("forwarder:cloud: %+v", cloud)
	}
	if old.ConsumerName != "forwarder:old" || old.Kind != "forwarder" || old.State != "not running" || old.TargetStream != "old" ||
		old.LagRecords != 30-n0 || old.Shards[0].LagRecords != 0 {
		t.Fatalf("forwarder:old: %+v", old)
	}
	if b := out.Streams[1]; b.Records != 0 || len(b.Consumers) != 0 || b.Shards[0].LastSequenceNumber != "" || b.Shards[0].TrimHorizonSequenceNumber != shards.FormatSeq(b.Shards[0].ShardId, 1) {
		t.Fatalf("stream b: %+v", b)
	}

	// One stream by name; a missing one is ResourceNotFoundException.
	out = DescribeGatewayOutput{}
	if _, err := e.call(weirPrefix+"DescribeGateway", map[string]any{"StreamName": "b"}, &out); err != nil || len(out.Streams) != 1 {
		t.Fatalf("by name: %v %+v", err, out)
	}
	_, err = e.call(weirPrefix+"DescribeGateway", map[string]any{"StreamName": "nope"}, nil)
	wantCode(t, err, errResourceNotFound)

	// After a split: closed parents are counted and the lag covers the
	// children.
	if err := st.Split(infos[1].ID, shards.HashKey{Hi: 3 << 62}); err != nil {
		t.Fatal(err)
	}
	out = DescribeGatewayOutput{}
	if _, err := e.call(weirPrefix+"DescribeGateway", map[string]any{"StreamARN": "arn:aws:kinesis:eu-west-1:1:stream/a"}, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.Streams[0]; s.OpenShardCount != 3 || s.ClosedShardCount != 1 || !s.Shards[1].Closed || s.Shards[1].EndingSequenceNumber == "" {
		t.Fatalf("after split: %+v", s)
	}
}

func TestMetricsOnInjectedRegistry(t *testing.T) {
	e := newEnv(t, envOptions{})
	reg := prometheus.NewRegistry()
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_test_total", Help: "A test counter."})
	other.Add(7)
	reg.MustRegister(other)
	srv := mustNew(t, Config{}, e.store, Options{Clock: e.clock.Now, Registry: reg})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	m := promtest.Scrape(t, nil, hs.URL+"/metrics")
	m.Want(t, 7, "weir_test_total")
	m.Want(t, 0, "weir_api_put_records_total", "outcome", "ok")
	if probs, err := m.Lint(); err != nil || len(probs) > 0 {
		t.Errorf("promlint: %v %q", err, probs)
	}
	// Close takes the API's families off the registry it was given, so a
	// new Server can register on it again (a test in parallel, a restart
	// of the API in the same process).
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 {
		t.Fatalf("after Close: %d families, %v", len(fams), err)
	}
	mustNew(t, Config{}, e.store, Options{Clock: e.clock.Now, Registry: reg})
}
