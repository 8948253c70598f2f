package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
	"github.com/weir-gateway/weir/firmware-sim/internal/fakekinesis"
	"github.com/weir-gateway/weir/firmware-sim/internal/testbroker"
	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/verify"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// signal.Notify's watcher goroutine lives for the process.
		goleak.IgnoreTopFunction("os/signal.signal_recv"),
		goleak.IgnoreAnyFunction("os/signal.loop"))
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = realMain(args, &o, &e)
	return code, o.String(), e.String()
}

func TestRunWritesLedgerAndJSONSummary(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	led := filepath.Join(t.TempDir(), "run.ledger")
	code, out, errOut := run(t, "--broker", b.URL, "--devices", "8", "--messages", "25", "--rate", "0",
		"--payload", "cbor", "--mobile", "--qos", "2", "--ledger", led, "--summary", "json", "--progress", "50ms", "--id", "t-{n:03}")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum fleet.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	f, err := os.Open(led)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ledger.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Acked != 200 || uint64(len(entries)) != sum.Acked || entries[0].Device[:2] != "t-" {
		t.Fatalf("acked %d, ledger %d lines, first %+v", sum.Acked, len(entries), entries[0])
	}
	if !strings.Contains(errOut, "connected 8/8") {
		t.Fatalf("no plain progress lines on a non-terminal:\n%s", errOut)
	}
}

func TestTextSummaryAndFailOnLoss(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{OnPublish: func(*mochi.Client, packets.Packet) error {
		return packets.ErrRejectPacket // never ack
	}})
	code, out, _ := run(t, "--broker", b.URL, "--devices", "2", "--messages", "2", "--ack-timeout", "100ms", "--progress", "0", "--fail-on-loss")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	for _, w := range []string{"acked", "ack_timeout", "publish→ack", "no acknowledgements"} {
		if !strings.Contains(out, w) {
			t.Fatalf("text summary lacks %q:\n%s", w, out)
		}
	}
}

// TestEndToEndVerify plays the smoke scenario into a broker whose publish
// hook appends every payload to a fake Kinesis stream (as a gateway
// would, keyed by the topic's device level), then verifies the ledger
// against it; then against a stream with a lost and a reordered record.
func TestEndToEndVerify(t *testing.T) {
	for _, envelope := range []string{"raw", "json"} {
		t.Run(envelope, func(t *testing.T) {
			good := fakekinesis.New("telemetry")
			good.PageSize = 100
			good.AddShard("shardId-000000000000", "", false)
			b := testbroker.Start(t, testbroker.Options{OnPublish: func(cl *mochi.Client, pk packets.Packet) error {
				key := strings.Split(pk.TopicName, "/")[1]
				data := pk.Payload
				if envelope == "json" {
					data, _ = json.Marshal(map[string]any{"id": "gw:telemetry:" + key, "topic": pk.TopicName,
						"client_id": cl.ID, "data": base64.StdEncoding.EncodeToString(pk.Payload)})
				}
				good.Put("shardId-000000000000", key, data)
				return nil
			}})
			led := filepath.Join(t.TempDir(), "smoke.ledger")
			code, _, errOut := run(t, "--broker", b.URL, "--scenario", "scenarios/smoke.yaml", "--ledger", led, "--progress", "0")
			if code != exitOK {
				t.Fatalf("run exit %d: %s", code, errOut)
			}
			srv := httptest.NewServer(good)
			defer srv.Close()
			code, out, errOut := run(t, "verify", "--ledger", led, "--api", srv.URL, "--stream", "telemetry",
				"--envelope", envelope, "--format", "json", "--strict-keys")
			if code != exitOK {
				t.Fatalf("verify exit %d: %s %s", code, out, errOut)
			}
			var rep verify.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Expected != 550 || rep.Found != 550 || rep.Devices != 30 {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}

func TestVerifyFailsOnLossAndReorder(t *testing.T) {
	dir := t.TempDir()
	led := filepath.Join(dir, "l")
	var buf bytes.Buffer
	w := ledger.NewWriter(&buf)
	for s := uint64(1); s <= 4; s++ {
		_ = w.Append(ledger.Entry{Device: "d", Seq: s, Key: "d", Ack: time.Now()})
	}
	_ = w.Close()
	if err := os.WriteFile(led, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fk := fakekinesis.New("s")
	fk.AddShard("shardId-0", "", false)
	for _, seq := range []int{1, 3, 2, 2} { // 4 lost, 2 after 3, 2 twice
		fk.Put("shardId-0", "d", []byte(`{"device":"d","seq":`+string(rune('0'+seq))+`,"ts":1}`))
	}
	srv := httptest.NewServer(fk)
	defer srv.Close()
	code, out, _ := run(t, "verify", "--ledger", led, "--endpoint", srv.URL, "--stream", "s")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out)
	}
	for _, want := range []string{"missing 1", "duplicated 1", "out-of-order 1", "2 after 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"run", "-h"}, {"verify", "-h"}, {"help"}, {"help", "verify"}, {"check-scenario", "-h"}} {
		code, out, errOut := run(t, args...)
		text := out + errOut
		if code != exitOK || !strings.Contains(text, "Usage") || !strings.Contains(text, "Example") {
			t.Errorf("%v: exit %d\n%s", args, code, text)
		}
	}
	// The help a newcomer reaches first names the other commands.
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := run(t, args...)
		if text := out + errOut; code != exitOK || !strings.Contains(text, "firmware-sim verify") {
			t.Errorf("%v does not mention verify:\n%s", args, text)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--qos", "3"}, "qos"},
		{[]string{"--payload", "xml"}, "payload"},
		{[]string{"--size", "9-1"}, "size"},
		{[]string{"--broker", "http://x"}, "broker"},
		{[]string{"--scenario", "scenarios/smoke.yaml", "--devices", "3"}, "--devices cannot be combined"},
		{[]string{"--scenario", "nope.yaml"}, "nope.yaml"},
		{[]string{"--summary", "xml"}, "summary"},
		{[]string{"bogus"}, "unknown command"},
		{[]string{"verify", "--stream", "x"}, "--ledger is required"},
		{[]string{"verify", "--ledger", "l", "--stream", "x", "--api", "a", "--endpoint", "b"}, "not both"},
		{[]string{"check-scenario"}, "Usage"},
	}
	for _, tc := range cases {
		code, _, errOut := run(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s", tc.args, code, errOut)
		}
	}
}

func TestCheckScenario(t *testing.T) {
	code, out, errOut := run(t, "check-scenario", "scenarios/sensors-and-cameras.yaml")
	if code != exitOK || !strings.Contains(out, "550 devices") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("groups:\n  - count: -1\n"), 0o644)
	code, _, errOut = run(t, "check-scenario", bad)
	if code != exitUsage || !strings.Contains(errOut, "bad.yaml:2: groups[0].count") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

func TestProgressRendering(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true)
	p.update(fleet.Snapshot{Elapsed: time.Second, Devices: 3, Connected: 3, Sent: 10, Acked: 10})
	p.log("storm at %v", time.Second)
	p.update(fleet.Snapshot{Elapsed: 2 * time.Second, Devices: 3, Connected: 3, Sent: 30, Acked: 30})
	p.finish()
	s := buf.String()
	if !strings.Contains(s, "\r\033[K") || !strings.Contains(s, "20 msg/s") || !strings.Contains(s, "storm at 1s\n") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("tty rendering %q", s)
	}
	buf.Reset()
	p = newProgress(&buf, false)
	p.update(fleet.Snapshot{Elapsed: time.Second, Devices: 1})
	p.update(fleet.Snapshot{Elapsed: 2 * time.Second, Devices: 1})
	if strings.Contains(buf.String(), "\r") || strings.Count(buf.String(), "\n") != 2 {
		t.Fatalf("plain rendering %q", buf.String())
	}
}
