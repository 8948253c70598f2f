package verify

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/internal/fakekinesis"
	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

func msg(dev string, seq uint64) []byte {
	return payload.NewGenerator(dev, 1, 0, payload.JSON, false).Next(seq, time.Now().UnixMilli(), 0)
}

// TestVerifyThroughSDK drives the real aws-sdk-go-v2 client (dummy
// credentials, custom endpoint) against the fake: a closed parent shard
// listed after its children must still be read first, and records that
// arrive while verify waits are picked up.
func TestVerifyThroughSDK(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	fk := fakekinesis.New("telemetry")
	fk.AddShard("shardId-000000000001", "shardId-000000000000", false)
	fk.AddShard("shardId-000000000002", "shardId-000000000000", false)
	fk.AddShard("shardId-000000000000", "", true)
	for s := uint64(1); s <= 5; s++ {
		fk.Put("shardId-000000000000", "a", msg("a", s))
	}
	for s := uint64(6); s <= 8; s++ {
		fk.Put("shardId-000000000001", "a", msg("a", s))
	}
	fk.Put("shardId-000000000002", "b", msg("b", 1))
	fk.Put("shardId-000000000002", "b", []byte("not ours"))
	srv := httptest.NewServer(fk)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api, err := NewClient(ctx, ClientOptions{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var led []ledger.Entry
	for s := uint64(1); s <= 8; s++ {
		led = append(led, ledger.Entry{Device: "a", Seq: s, Key: "a"})
	}
	led = append(led, ledger.Entry{Device: "b", Seq: 1, Key: "b"}, ledger.Entry{Device: "b", Seq: 2, Key: "b"})

	go func() {
		time.Sleep(300 * time.Millisecond)
		fk.Put("shardId-000000000002", "b", msg("b", 2))
	}()
	rep, err := Verify(ctx, api, "telemetry", led, RunOptions{Wait: 5 * time.Second, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed(true, true) || rep.Found != 10 || rep.Foreign != 1 || rep.OutOfOrder != 0 {
		t.Fatalf("report %+v", rep)
	}
	if !fk.Signed() || fk.Calls("ListShards") < 3 || fk.Calls("GetShardIterator") != 3 {
		t.Fatalf("ListShards %d GetShardIterator %d signed %v", fk.Calls("ListShards"), fk.Calls("GetShardIterator"), fk.Signed())
	}
	if _, err := Verify(ctx, api, "nope", led, RunOptions{}); err == nil || !strings.Contains(err.Error(), "ResourceNotFound") {
		t.Fatalf("unknown stream: %v", err)
	}
}

// TestVerifyDetectsReorderWithinShard: a real reorder inside a shard is caught.
func TestVerifyDetectsReorderWithinShard(t *testing.T) {
	fk := fakekinesis.New("telemetry")
	fk.AddShard("s0", "", false)
	for _, s := range []uint64{1, 3, 2} {
		fk.Put("s0", "a", msg("a", s))
	}
	srv := httptest.NewServer(fk)
	defer srv.Close()
	ctx := context.Background()
	api, err := NewClient(ctx, ClientOptions{Endpoint: srv.URL, Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	led := []ledger.Entry{{Device: "a", Seq: 1}, {Device: "a", Seq: 2}, {Device: "a", Seq: 3}}
	rep, err := Verify(ctx, api, "telemetry", led, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OutOfOrder != 1 || !rep.Failed(false, false) {
		t.Fatalf("report %+v", rep)
	}
}
