package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/firmware-sim/internal/testbroker"
	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

func TestMain(m *testing.M) {
	testbroker.MaybeServe() // when re-executed as a broker child process
	code := m.Run()
	if code == 0 {
		if err := noLeaks(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// noLeaks is goleak's check, given longer than goleak's own ~0.4 s: a
// paho client that was reconnecting when Disconnect came sleeps out its
// backoff (up to MaxReconnectInterval, 300 ms in these tests) before it
// notices, and a loaded machine adds to that. A goroutine still there
// after d is a leak.
func noLeaks(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCountsLedgerAndSummaryAgree(t *testing.T) {
	for _, qos := range []byte{0, 1, 2} {
		t.Run("qos"+string('0'+qos), func(t *testing.T) {
			b := testbroker.Start(t, testbroker.Options{})
			var led bytes.Buffer
			cfg := Config{
				Broker: b.URL, CleanSession: true, Seed: 42, Ledger: &led,
				Groups: []Group{
					{Name: "s", Count: 20, Messages: 30, QoS: qos, Payload: payload.JSON},
					{Name: "c", Count: 5, Messages: 10, QoS: qos, Payload: payload.Binary, Size: SizeRange{1000, 4000}},
					{Name: "m", Count: 5, Messages: 10, QoS: qos, Payload: payload.CBOR, Mobile: true, Inflight: 4},
				},
			}
			sum, err := Run(ctxT(t, 15*time.Second), cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(20*30 + 5*10 + 5*10)
			if sum.Generated != want || sum.Sent != want || sum.Acked != want || sum.Failed != 0 {
				t.Fatalf("summary %+v, want %d everywhere and no failures", sum, want)
			}
			// QoS 0 "acked" means written: the broker may still be reading.
			for deadline := time.Now().Add(3 * time.Second); b.Publishes() < int64(want) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if got := b.Publishes(); got != int64(want) {
				t.Fatalf("broker saw %d publishes, want %d", got, want)
			}
			entries, err := ledger.Read(&led)
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(entries)) != sum.Acked || sum.LedgerLines != sum.Acked {
				t.Fatalf("ledger has %d lines (summary says %d), acked %d", len(entries), sum.LedgerLines, sum.Acked)
			}
			next := map[string]uint64{}
			for _, e := range entries {
				if e.Key != e.Device {
					t.Fatalf("key %q for device %q", e.Key, e.Device)
				}
				if e.Seq != next[e.Device]+1 {
					t.Fatalf("%s: ledger seq %d after %d", e.Device, e.Seq, next[e.Device])
				}
				next[e.Device] = e.Seq
			}
			if len(next) != 30 || next["s-00001"] != 30 || next["c-00005"] != 10 {
				t.Fatalf("per-device counts %v", next)
			}
			if sum.Latency.Count != want || sum.Latency.P50 <= 0 || sum.Latency.Max < sum.Latency.P99 {
				t.Fatalf("latency %+v", sum.Latency)
			}
			if sum.Connects != 30 || sum.NeverConnected != 0 {
				t.Fatalf("connects %d never %d", sum.Connects, sum.NeverConnected)
			}
			js, _ := json.Marshal(sum)
			for _, k := range []string{`"acked":`, `"failed_by_reason":`, `"latency_ms":`, `"p999":`} {
				if !strings.Contains(string(js), k) {
					t.Fatalf("summary JSON lacks %s: %s", k, js)
				}
			}
		})
	}
}
