package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, b)
	}
	return resp.StatusCode
}

// TestReadyzFlipsWhenShardFails: a paused forwarder is reported but keeps
// the gateway ready; a listener the daemon reports down, or a failed shard,
// makes /readyz 503 and names it; /healthz stays 200 throughout (the
// process is alive); closing makes it 503. (A shard's log failing for
// real, sticky, is the wal's and shards' tests' business; FailedShards
// reads Shard.Err.)
func TestReadyzFlipsWhenShardFails(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createStream("s", 2)
	var failed, down atomic.Bool
	srv := mustNew(t, Config{}, e.store, Options{
		Forwarders: func() []ForwarderStatus {
			return []ForwarderStatus{{Stream: "s", TargetStream: "up", State: "paused: AccessDenied", LastError: "not allowed"}}
		},
		NotReady: func() []string {
			if down.Load() {
				return []string{"mqtt: listeners not accepting"}
			}
			return nil
		},
		failedShards: func() []FailedShard {
			bad := FailedShards(e.store) // the real check: none here
			if failed.Load() {
				bad = append(bad, FailedShard{Stream: "s", Shard: "shardId-000000000001", Error: "wal: sync segment: input/output error"})
			}
			return bad
		},
	})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close(context.Background())

	var r Readiness
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusOK || r.Status != "ready" || len(r.NotReady) != 0 {
		t.Fatalf("fresh: %d %+v", code, r)
	}
	if len(r.Forwarders) != 1 || r.Forwarders[0].State != "paused: AccessDenied" || r.Forwarders[0].LastError != "not allowed" {
		t.Errorf("paused forwarder not reported: %+v", r.Forwarders)
	}

	down.Store(true)
	r = Readiness{}
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusServiceUnavailable || len(r.NotReady) != 1 || r.NotReady[0] != "mqtt: listeners not accepting" {
		t.Fatalf("listener down: %d %+v", code, r)
	}
	down.Store(false)

	failed.Store(true)
	r = Readiness{}
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusServiceUnavailable || r.Status != "not ready" {
		t.Fatalf("failed shard: %d %+v", code, r)
	}
	if len(r.FailedShards) != 1 || r.FailedShards[0].Shard != "shardId-000000000001" || len(r.NotReady) != 1 {
		t.Errorf("failed shard not named: %+v", r)
	}
	var h map[string]any
	if code := getJSON(t, hs.URL+"/healthz", &h); code != http.StatusOK || h["status"] != "ok" || h["streams"] != 1.0 {
		t.Errorf("/healthz with a failed shard: %d %v", code, h)
	}
	failed.Store(false)

	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Closing: not ready, so a load balancer drains the gateway first.
	r = Readiness{}
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusServiceUnavailable || len(r.NotReady) != 1 || r.NotReady[0] != "api: closing" {
		t.Errorf("closing: %d %+v", code, r)
	}
}
