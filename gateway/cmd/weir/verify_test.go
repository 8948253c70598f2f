package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// TestVerify: weir verify passes an intact data directory, refuses to run
// beside a gateway, and names FILE:OFFSET of a damaged record in a sealed
// segment with exit status 1; --help documents it.
func TestVerify(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: []shards.StreamConfig{{Name: "verified", Shards: 1, SegmentSize: 8 * conf.KiB, MaxRecordSize: 4 * conf.KiB}}})
	counts := map[string]int{}
	g.publish("verified", 600, 5, counts)
	if _, errs, code := weir(t, "verify", "--data-dir", g.dir); code != 2 || !strings.Contains(errs, "running") {
		t.Fatalf("verify beside a running gateway: exit %d, %q", code, errs)
	}
	g.close()
	out, errs, code := weir(t, "verify", "--data-dir", g.dir)
	if code != 0 || !strings.Contains(out, "ok: verified/log: ") || strings.Contains(out, "DAMAGED") {
		t.Fatalf("verify of an intact data dir: exit %d\n%s%s", code, out, errs)
	}
	var victim string // a sealed segment: not the newest of the stream's log
	if segs, _ := filepath.Glob(filepath.Join(g.dir, "streams", "verified", "log", "*.seg")); len(segs) > 1 {
		victim = segs[0]
	}
	if victim == "" {
		t.Fatal("the stream's log rolled no segment")
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 0x55
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = weir(t, "verify", "--data-dir", g.dir)
	if code != 1 || !regexp.MustCompile(regexp.QuoteMeta(victim)+`:\d+: `).MatchString(out) || !strings.Contains(out, "DAMAGED") {
		t.Fatalf("verify of a damaged segment: exit %d\n%s", code, out)
	}
	_, errs, code = weir(t, "verify", "--help")
	if code != 0 || !strings.Contains(errs, "FILE:OFFSET") {
		t.Fatalf("verify --help: exit %d, %q", code, errs)
	}
	if _, _, code := weir(t, "verify"); code != 2 {
		t.Fatalf("verify without --data-dir: exit %d", code)
	}
}
