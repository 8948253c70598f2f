package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-gateway/weir/gateway"
	"github.com/weir-gateway/weir/shards"
)

// parseLine decodes one JSON line of weir read / weir dump.
func parseLine(t *testing.T, line string) gateway.RecordLine {
	t.Helper()
	var l gateway.RecordLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("not a record line: %q: %v", line, err)
	}
	return l
}

// checkKeyOrder fails unless every key's records ("key:n" data) come in
// order, each once.
func checkKeyOrder(t *testing.T, out []string) {
	t.Helper()
	next := map[string]int{}
	for _, line := range out {
		l := parseLine(t, line)
		k, n, _ := strings.Cut(string(l.Data), ":")
		i, _ := strconv.Atoi(n)
		if i != next[k] {
			t.Fatalf("key %s: record #%d printed where #%d was due (%s/%s)", k, i, next[k], l.Shard, l.Seq)
		}
		next[k]++
	}
}

// Read prints exactly what dump prints for the same data: the same fields,
// the same bytes, shard by shard with parents before children.
func TestReadPrintsWhatDumpPrints(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: []shards.StreamConfig{{Name: "s", Shards: 2}}})
	counts := map[string]int{}
	g.publish("s", 60, 9, counts)
	if _, err := g.d.Store().Append(context.Background(), "s", &shards.Record{Key: "key0", Data: []byte("key0:" + strconv.Itoa(counts["key0"])),
		Topic: "devices/key0/telemetry", ClientID: "key0", QoS: 2, Props: []shards.UserProperty{{Key: "unit", Value: "°C"}}}, shards.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	counts["key0"]++
	st, _ := g.d.Store().Stream("s")
	if err := st.Split("shardId-000000000000", shards.HashKey{Hi: 1 << 62}); err != nil {
		t.Fatal(err)
	}
	g.publish("s", 60, 9, counts)

	out, errs, code := weir(t, "read", "s", "--api", g.api)
	if code != 0 {
		t.Fatalf("read exited %d: %s", code, errs)
	}
	got := lines(out)
	if len(got) != 121 {
		t.Fatalf("read printed %d lines, want 121", len(got))
	}
	checkKeyOrder(t, got)
	var shardOrder []string
	for _, line := range got {
		if l := parseLine(t, line); len(shardOrder) == 0 || shardOrder[len(shardOrder)-1] != l.Shard {
			shardOrder = append(shardOrder, l.Shard)
		}
	}
	if !slices.IsSorted(shardOrder) || len(shardOrder) != 4 {
		t.Fatalf("shards printed in the order %v, want each once in id order", shardOrder)
	}
	// The record with every field set has exactly dump's fields.
	var withProps map[string]any
	for _, line := range got {
		if strings.Contains(line, `"props"`) {
			_ = json.Unmarshal([]byte(line), &withProps)
		}
	}
	var keys []string
	for k := range withProps {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"client_id", "data", "key", "props", "qos", "seq", "shard", "topic", "ts"}; !slices.Equal(keys, want) {
		t.Fatalf("fields %v, want %v", keys, want)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(withProps["ts"].(string)) {
		t.Fatalf("ts %q is not RFC 3339 with milliseconds in UTC", withProps["ts"])
	}
	if d, _ := base64.StdEncoding.DecodeString(withProps["data"].(string)); !strings.HasPrefix(string(d), "key0:") || withProps["qos"] != 2.0 {
		t.Fatalf("record %v", withProps)
	}

	raw, _, code := weir(t, "read", "s", "--api", g.api, "--format", "raw", "--limit", "5")
	if code != 0 || len(lines(raw)) != 5 {
		t.Fatalf("raw --limit 5: exit %d, %q", code, raw)
	}
	for i, data := range lines(raw) {
		if want := string(parseLine(t, got[i]).Data); data != want {
			t.Fatalf("raw line %d = %q, want %q", i, data, want)
		}
	}

	g.close()
	dump, errs, code := weir(t, "dump", "--data-dir", g.dir, "--stream", "s")
	if code != 0 {
		t.Fatalf("dump exited %d: %s", code, errs)
	}
	if dump != out {
		t.Fatalf("read and dump differ:\nread:\n%s\ndump:\n%s", out, dump)
	}
}

// A consumer's runs, stopped by --limit or by an interrupt, print every
// record exactly once between them, in the order one plain read prints.
func TestReadConsumerResumesWithoutGapOrDuplicate(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: []shards.StreamConfig{{Name: "c", Shards: 3}}})
	counts := map[string]int{}
	g.publish("c", 50, 7, counts)
	all, _, _ := weir(t, "read", "c", "--api", g.api)

	var joined strings.Builder
	for _, run := range []struct {
		limit string
		n     int
	}{{"20", 20}, {"7", 7}, {"0", 23}, {"0", 0}} {
		out, errs, code := weir(t, "read", "c", "--api", g.api, "--consumer", "app", "--limit", run.limit)
		if code != 0 || len(lines(out)) != run.n {
			t.Fatalf("read --consumer --limit %s: exit %d, %d lines, want %d (%s)", run.limit, code, len(lines(out)), run.n, errs)
		}
		joined.WriteString(out)
	}
	if joined.String() != all {
		t.Fatalf("the consumer's runs printed\n%s\nwant\n%s", joined.String(), all)
	}
	// New records: the next run prints just them.
	g.publish("c", 5, 7, counts)
	out, _, _ := weir(t, "read", "c", "--api", g.api, "--consumer", "app")
	if n := len(lines(out)); n != 5 {
		t.Fatalf("after 5 new records the consumer printed %d", n)
	}
	checkKeyOrder(t, append(lines(all), lines(out)...))

	// Interrupted while following: what was printed is committed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- readStream(ctx, []string{"c", "--api", g.api, "--consumer", "tail", "--follow"}, &buf, &buf)
	}()
	waitFor(t, "follow prints the backlog", func() bool { return len(lines(buf.String())) == 55 })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("interrupted read exited %d: %s", code, buf.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read --follow did not stop on interrupt")
	}
	g.publish("c", 3, 7, counts)
	out, _, _ = weir(t, "read", "c", "--api", g.api, "--consumer", "tail")
	if n := len(lines(out)); n != 3 {
		t.Fatalf("after an interrupt and 3 new records the consumer printed %d", n)
	}

	// Without --consumer nothing was registered; --from moves a consumer.
	var names []string
	for _, ci := range g.d.Store().Checkpoints().Consumers("c") {
		names = append(names, ci.Name)
	}
	if !slices.Equal(names, []string{"app", "tail"}) {
		t.Fatalf("consumers %v, want [app tail]", names)
	}
	all, _, _ = weir(t, "read", "c", "--api", g.api)
	out, _, _ = weir(t, "read", "c", "--api", g.api, "--consumer", "app", "--from", "trim_horizon", "--limit", "4")
	again, _, _ := weir(t, "read", "c", "--api", g.api, "--consumer", "app", "--limit", "1")
	if want := lines(all)[4]; len(lines(again)) != 1 || lines(again)[0] != want || len(lines(out)) != 4 {
		t.Fatalf("after a rewind and 4 records the consumer printed %q, want %q", again, want)
	}
}

func TestReadFromLatestThenFollow(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	counts := map[string]int{}
	g.publish("telemetry", 20, 5, counts)
	out, errs, code := weir(t, "read", "telemetry", "--api", g.api, "--from", "latest")
	if code != 0 || out != "" {
		t.Fatalf("--from latest: exit %d, printed %q (%s)", code, out, errs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var buf syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- readStream(ctx, []string{"telemetry", "--api", g.api, "--from", "latest", "--follow"}, &buf, &buf)
	}()
	// The reader's start is not observable, so publish until it prints.
	for i := 0; len(lines(buf.String())) == 0; i++ {
		if ctx.Err() != nil {
			t.Fatal("--follow printed nothing")
		}
		if _, err := g.d.Store().Append(ctx, "telemetry", &shards.Record{Key: "new", Data: fmt.Appendf(nil, "fresh-%d", i)}, shards.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l := parseLine(t, lines(buf.String())[0]); !strings.HasPrefix(string(l.Data), "fresh-") {
		t.Fatalf("--from latest --follow printed an old record: %s", l.Data)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, buf.String())
	}

	// --wait ends a follow once nothing arrives.
	start := time.Now()
	out, errs, code = weir(t, "read", "telemetry", "--api", g.api, "--follow", "--wait", "300ms")
	if code != 0 || len(lines(out)) < 21 {
		t.Fatalf("--follow --wait: exit %d, %d lines (%s)", code, len(lines(out)), errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("--wait 300ms took %v", d)
	}
}

func TestReadFromSequenceNumber(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: []shards.StreamConfig{{Name: "one", Shards: 1}}})
	counts := map[string]int{}
	g.publish("one", 10, 3, counts)
	for _, tc := range []struct {
		from  string
		first int
		n     int
	}{{"4", 4, 7}, {"0", 1, 10}, {"1", 1, 10}, {"10", 10, 1}, {"11", 0, 0}, {"99999", 0, 0}} {
		out, errs, code := weir(t, "read", "one", "--api", g.api, "--from", tc.from)
		got := lines(out)
		if code != 0 || len(got) != tc.n {
			t.Fatalf("--from %s: exit %d, %d lines, want %d (%s)", tc.from, code, len(got), tc.n, errs)
		}
		for i, line := range got {
			if l := parseLine(t, line); l.Seq != shards.FormatSeq(l.Shard, uint64(tc.first+i)) {
				t.Fatalf("--from %s: line %d has seq %s", tc.from, i, l.Seq)
			}
		}
	}
}

func TestReadErrors(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	dead := "http://" + closedPort(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"read", "nope", "--api", g.api}, 1, fmt.Sprintf(`weir read: stream "nope" not found at %s`, g.api)},
		{[]string{"read", "telemetry", "--api", dead}, 1, "weir read: cannot reach the gateway at " + dead},
		{[]string{"read", "--api", g.api}, 2, "exactly one STREAM"},
		{[]string{"read", "telemetry", "--from", "checkpoint"}, 2, "--from checkpoint needs --consumer"},
		{[]string{"read", "telemetry", "--from", "yesterday"}, 2, "--from \"yesterday\""},
		{[]string{"read", "telemetry", "--format", "xml"}, 2, "--format \"xml\""},
		{[]string{"read", "telemetry", "--wait", "1s"}, 2, "--wait needs --follow"},
		{[]string{"streams", "--api", dead}, 1, "weir streams: cannot reach the gateway at " + dead},
	} {
		_, errs, code := weir(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("weir %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.msg)
		}
	}
}

// If the checkpoint of what was printed cannot be committed, read says so
// and fails, rather than let the next run repeat records silently.
func TestReadReportsAnUncommittedCheckpoint(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: []shards.StreamConfig{{Name: "u", Shards: 1}}})
	counts := map[string]int{}
	g.publish("u", 3, 1, counts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- readStream(ctx, []string{"u", "--api", g.api, "--consumer", "gone", "--follow"}, &out, &errb)
	}()
	waitFor(t, "the backlog is printed", func() bool { return len(lines(out.String())) == 3 })
	// Deregistered behind its back, the consumer can still read but no
	// longer commit; a record printed after that is certainly uncommitted.
	if err := g.d.Store().Checkpoints().Deregister("u", "gone"); err != nil {
		t.Fatal(err)
	}
	g.publish("u", 1, 1, counts)
	waitFor(t, "the new record is printed", func() bool { return len(lines(out.String())) == 4 })
	cancel()
	if code := <-done; code != 1 || !strings.Contains(errb.String(), "weir read: the checkpoint of what was printed could not be committed") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// closingPipe accepts n writes, then fails like a pipe whose reader exited.
type closingPipe struct {
	n   int
	got []string
}

func (p *closingPipe) Write(b []byte) (int, error) {
	if len(p.got) == p.n {
		return 0, syscall.EPIPE
	}
	p.got = append(p.got, string(b))
	return len(b), nil
}

// `weir read --consumer c | head -3`: the run ends quietly and commits the
// three records written, so the next run starts at the fourth.
func TestReadIntoAClosedPipeCommitsWhatWasWritten(t *testing.T) {
	g := startGateway(t, gatewayOptions{streams: []shards.StreamConfig{{Name: "p", Shards: 2}}})
	counts := map[string]int{}
	g.publish("p", 12, 4, counts)
	all, _, _ := weir(t, "read", "p", "--api", g.api)
	pipe := &closingPipe{n: 3}
	var errb syncBuffer
	if code := readStream(context.Background(), []string{"p", "--api", g.api, "--consumer", "head"}, pipe, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rest, _, _ := weir(t, "read", "p", "--api", g.api, "--consumer", "head")
	if got := strings.Join(pipe.got, "") + rest; got != all {
		t.Fatalf("written then resumed:\n%s\nwant\n%s", got, all)
	}
}
