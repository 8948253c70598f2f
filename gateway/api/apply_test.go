package api

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/internal/conf"
)

// New read limits apply to the next GetRecords of every shard, including
// a shard whose limiter already exists; the listener and the
// authentication settings are reported as needing a restart and stay.
func TestApplyReadLimits(t *testing.T) {
	e := newEnv(t, envOptions{limits: ReadLimits{CallsPerSec: 1}})
	ctx := e.ctx()
	e.createStream("l", 1)
	e.put("l", "k", []byte("x"))
	it := e.iter("l", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
	g := e.get(it, 0)
	_, err := e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: g.NextShardIterator})
	wantCode(t, err, errThroughputExceeded)

	next := e.srv.cfg
	next.ReadLimits = ReadLimits{CallsPerSec: 3}
	next.Listen = "127.0.0.1:9"
	next.AllowedHosts = []string{"gw.local"}
	cs := e.srv.Apply(next)
	want := []struct {
		path   string
		effect conf.Effect
	}{{"api.listen", conf.Restart}, {"api.allowed_hosts[0]", conf.Restart}, {"api.read_limits.calls_per_sec", conf.Live}}
	if len(cs) != len(want) {
		t.Fatalf("changes = %+v", cs)
	}
	for i, w := range want {
		if cs[i].Path != w.path || cs[i].Effect != w.effect {
			t.Errorf("change %d = %+v, want %s %v", i, cs[i], w.path, w.effect)
		}
	}
	// Same instant, the limit that refused is now 3 calls a second.
	for range 3 {
		g = e.get(g.NextShardIterator, 0)
	}
	_, err = e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: g.NextShardIterator})
	wantCode(t, err, errThroughputExceeded)
	if e.srv.cfg.Listen == next.Listen || !e.srv.hosts.allows("127.0.0.1") || e.srv.hosts.allows("gw.local") {
		t.Fatal("restart-only settings changed")
	}
	if cs := e.srv.Apply(next); len(cs) != 2 {
		t.Fatalf("second Apply should still report the two restart keys only: %+v", cs)
	}
}
