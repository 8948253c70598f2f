package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// smallSegments makes every shard roll often, so backups cross segments.
var smallSegments = []shards.StreamConfig{{Name: "telemetry", Shards: 2, SegmentSize: 8 * conf.KiB}}

// TestBackupOffline: refused beside a running gateway; once it stops, the
// backup restores, with the real tar, into a directory whose dump equals
// the original's, and a gateway started on it serves every record.
func TestBackupOffline(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: smallSegments})
	counts := map[string]int{}
	g.publish("telemetry", 500, 7, counts)
	if _, errs, code := weir(t, "read", "telemetry", "--api", g.api, "--consumer", "dash", "--limit", "120"); code != 0 {
		t.Fatalf("read: %s", errs)
	}
	to := filepath.Join(t.TempDir(), "weir.tar")
	if _, errs, code := weir(t, "backup", "--data-dir", g.dir, "--to", to); code != 1 || !strings.Contains(errs, "--api URL") {
		t.Fatalf("backup beside a running gateway: exit %d, stderr %q; want 1 and a pointer to --api", code, errs)
	}
	if _, err := os.Stat(to); err == nil {
		t.Fatal("a refused backup left a file")
	}
	g.close()
	out, errs, code := weir(t, "backup", "--data-dir", g.dir, "--to", to)
	if code != 0 || !strings.Contains(out, "files") {
		t.Fatalf("offline backup: exit %d, %q, %q", code, out, errs)
	}
	restored := restore(t, to)
	for _, f := range []string{"api.key", "streams/telemetry/stream.json"} {
		a, errA := os.Stat(filepath.Join(g.dir, f))
		b, errB := os.Stat(filepath.Join(restored, f))
		if errA != nil || errB != nil || a.Mode() != b.Mode() {
			t.Errorf("%s: original %v (%v), restored %v (%v): want the same mode", f, a, errA, b, errB)
		}
	}
	if a, b := dump(t, g.dir), dump(t, restored); a != b || strings.Count(a, "\n") != 500 {
		t.Fatalf("restored dump differs from the original (%d and %d lines)", strings.Count(a, "\n"), strings.Count(b, "\n"))
	}
	r := startOn(t, restored)
	if out, errs, code := weir(t, "read", "telemetry", "--api", r.api, "--consumer", "dash"); code != 0 || len(lines(out)) != 380 {
		t.Fatalf("restored consumer dash read %d records (exit %d, %s), want the 380 after its checkpoint", len(lines(out)), code, errs)
	}
}

// TestBackupOnline copies a gateway's data while devices keep writing:
// every record stored before the backup started is in it, each key's
// records form a gap-free prefix, and the restored gateway serves them all
// and keeps the consumer's checkpoint.
func TestBackupOnline(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: smallSegments})
	counts := map[string]int{}
	g.publish("telemetry", 800, 5, counts)
	if _, errs, code := weir(t, "read", "telemetry", "--api", g.api, "--consumer", "dash", "--limit", "100"); code != 0 {
		t.Fatalf("read: %s", errs)
	}
	before := map[string]int{}
	for k, v := range counts {
		before[k] = v
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written atomic.Int64
	wg.Add(1)
	go func() { // keeps appending while the backup runs
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			rec := &shards.Record{Key: "live", Data: []byte{byte(i)}, QoS: 1}
			if _, err := g.d.Store().Append(context.Background(), "telemetry", rec, shards.AppendOptions{}); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	waitFor(t, "the writer runs", func() bool { return written.Load() > 50 })
	to := filepath.Join(t.TempDir(), "weir.tar")
	out, errs, code := weir(t, "backup", "--data-dir", g.dir, "--to", to, "--api", g.api)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("online backup: exit %d, %q, %q", code, out, errs)
	}
	restored := restore(t, to)
	got := map[string][]string{}
	for _, l := range lines(dump(t, restored)) {
		rl := parseLine(t, l)
		got[rl.Key] = append(got[rl.Key], string(rl.Data))
	}
	for k, n := range before {
		if len(got[k]) != n {
			t.Errorf("key %s: %d records in the backup, want the %d stored before it", k, len(got[k]), n)
		}
		for i, d := range got[k] {
			if want := k + ":" + strconv.Itoa(i); d != want {
				t.Fatalf("key %s: record %d is %q, want %q", k, i, d, want)
			}
		}
	}
	for i, d := range got["live"] {
		if d != string([]byte{byte(i)}) {
			t.Fatalf("live key: record %d out of order or missing in the backup", i)
		}
	}
	t.Logf("backup holds %d of the %d records written during it", len(got["live"]), written.Load())
	r := startOn(t, restored)
	out, errs, code = weir(t, "read", "telemetry", "--api", r.api, "--consumer", "dash")
	if want := 800 - 100 + len(got["live"]); code != 0 || len(lines(out)) != want {
		t.Fatalf("restored consumer dash read %d records (exit %d, %s), want %d", len(lines(out)), code, errs, want)
	}
}

func TestBackupUsage(t *testing.T) {
	if _, errs, code := weir(t, "backup", "--data-dir", t.TempDir()); code != 2 || !strings.Contains(errs, "--to") {
		t.Fatalf("backup without --to: exit %d, %q", code, errs)
	}
	if _, errs, code := weir(t, "backup", "--data-dir", filepath.Join(t.TempDir(), "none"), "--to", filepath.Join(t.TempDir(), "x.tar")); code != 1 || errs == "" {
		t.Fatalf("backup of a missing dir: exit %d, %q", code, errs)
	}
}

// restore extracts a backup with tar into a new directory.
func restore(t *testing.T, tarFile string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xf", tarFile, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v: %s", err, out)
	}
	return dir
}

func dump(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	if err := gateway.Dump(&b, zerolog.Nop(), dir, "", "telemetry", ""); err != nil {
		t.Fatalf("dump %s: %v", dir, err)
	}
	return b.String()
}

// startOn starts a gateway on an existing data directory.
func startOn(t *testing.T, dir string) *testGateway {
	t.Helper()
	return startGatewayIn(t, dir, gatewayOptions{streams: smallSegments})
}
