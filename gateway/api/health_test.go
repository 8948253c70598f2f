package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/weir-gateway/weir/shards"
	"github.com/weir-gateway/weir/wal"
)

// syncFailFS fails every segment fdatasync once armed: the one fault no
// real disk produces on demand, and what makes a shard's log fail.
type syncFailFS struct {
	wal.FS
	fail *atomic.Bool
}

func (f syncFailFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return syncFailFile{File: file, fail: f.fail}, nil
}

type syncFailFile struct {
	wal.File
	fail *atomic.Bool
}

func (f syncFailFile) Sync() error {
	if f.fail.Load() {
		return &os.PathError{Op: "fdatasync", Path: "segment", Err: syscall.EIO}
	}
	return f.File.Sync()
}

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
// the gateway ready; a shard whose fdatasync failed makes /readyz 503 and
// names it; /healthz stays 200 throughout (the process is alive).
func TestReadyzFlipsWhenShardFails(t *testing.T) {
	var fail atomic.Bool
	st, err := shards.Open(t.TempDir(), shards.Options{
		NoRetentionLoop: true, WALFS: syncFailFS{FS: wal.OSFS(), fail: &fail},
		Streams:    []shards.StreamConfig{shards.StreamConfig{Name: "s", Shards: 1, Rate: unlimitedRate}.WithDefaults()},
		Durability: shards.Durability{Fsync: shards.FsyncAlways},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var extra atomic.Pointer[[]string]
	srv := mustNew(t, Config{}, st, Options{
		Forwarders: func() []ForwarderStatus {
			return []ForwarderStatus{{Stream: "s", TargetStream: "up", State: "paused: AccessDenied", LastError: "not allowed"}}
		},
		NotReady: func() []string {
			if p := extra.Load(); p != nil {
				return *p
			}
			return nil
		},
	})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close(context.Background())

	var r Readiness
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusOK || r.Status != "ready" || len(r.NotReady) != 0 {
		t.Fatalf("fresh: %d %+v", code, r)
	}
	if len(r.Forwarders) != 1 || r.Forwarders[0].State != "paused: AccessDenied" {
		t.Errorf("paused forwarder not reported: %+v", r.Forwarders)
	}
	// The daemon's own reasons (a listener down) count.
	extra.Store(&[]string{"mqtt: listeners not accepting"})
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusServiceUnavailable || len(r.NotReady) != 1 {
		t.Fatalf("listener down: %d %+v", code, r)
	}
	extra.Store(nil)

	fail.Store(true)
	if _, err := st.Append(context.Background(), "s", &shards.Record{Key: "k", Data: []byte("x")}, shards.AppendOptions{}); err == nil {
		t.Fatal("append with a failing fdatasync succeeded")
	}
	r = Readiness{}
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusServiceUnavailable || r.Status != "not ready" {
		t.Fatalf("failed shard: %d %+v", code, r)
	}
	if len(r.FailedShards) != 1 || r.FailedShards[0].Stream != "s" || r.FailedShards[0].Error == "" || len(r.NotReady) != 1 {
		t.Errorf("failed shard not named: %+v", r)
	}
	var h map[string]any
	if code := getJSON(t, hs.URL+"/healthz", &h); code != http.StatusOK || h["status"] != "ok" {
		t.Errorf("/healthz with a failed shard: %d %v", code, h)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Closing: not ready, so a load balancer drains the gateway first.
	if code := getJSON(t, hs.URL+"/readyz", &r); code != http.StatusServiceUnavailable {
		t.Errorf("closing: %d %+v", code, r)
	}
}
