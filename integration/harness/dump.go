package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// Line is one record as `weir dump` prints it.
type Line struct {
	Shard    string
	Seq      uint64
	Key      string
	Topic    string
	ClientID string
	TS       time.Time
	QoS      byte
	Props    []Prop
	Data     []byte
}

// Prop is an MQTT v5 user property stored with a record.
type Prop struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// dumpLine is the wire form; seq is a decimal string as in Kinesis.
type dumpLine struct {
	Shard    *string `json:"shard"`
	Seq      *string `json:"seq"`
	Key      *string `json:"key"`
	Topic    string  `json:"topic"`
	ClientID string  `json:"client_id"`
	TS       *string `json:"ts"`
	QoS      byte    `json:"qos"`
	Props    []Prop  `json:"props"`
	Data     *[]byte `json:"data"`
}

// Dump runs `weir dump` on a stopped gateway's data directory and parses
// every line; a line missing shard, seq, key, ts or data fails the test.
// shard, if given, restricts the dump to one shard.
func Dump(t testing.TB, dataDir, stream string, shard ...string) []Line {
	t.Helper()
	args := []string{"dump", "--data-dir", dataDir, "--stream", stream}
	if len(shard) > 0 {
		args = append(args, "--shard", shard[0])
	}
	return runDump(t, args)
}

// DumpWithKeys is Dump for a gateway with encryption.keys_dir keysDir:
// records of encrypted streams come out decrypted.
func DumpWithKeys(t testing.TB, dataDir, keysDir, stream string) []Line {
	t.Helper()
	return runDump(t, []string{"dump", "--data-dir", dataDir, "--keys-dir", keysDir, "--stream", stream})
}

func runDump(t testing.TB, args []string) []Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, WeirBinary(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("harness: weir dump: %v", err)
	}
	var lines []Line
	var parseErr error
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		l, err := parseDumpLine(sc.Bytes())
		if err != nil && parseErr == nil {
			parseErr = fmt.Errorf("line %d: %w: %s", n, err, truncate(sc.Text(), 300))
		}
		lines = append(lines, l)
	}
	scanErr := sc.Err()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("harness: weir %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if scanErr != nil {
		t.Fatalf("harness: reading weir dump: %v", scanErr)
	}
	if parseErr != nil {
		t.Fatalf("harness: weir dump: %v", parseErr)
	}
	return lines
}

func parseDumpLine(b []byte) (Line, error) {
	var d dumpLine
	if err := json.Unmarshal(b, &d); err != nil {
		return Line{}, err
	}
	switch {
	case d.Shard == nil:
		return Line{}, fmt.Errorf("no shard")
	case d.Seq == nil:
		return Line{}, fmt.Errorf("no seq")
	case d.Key == nil:
		return Line{}, fmt.Errorf("no key")
	case d.TS == nil:
		return Line{}, fmt.Errorf("no ts")
	case d.Data == nil:
		return Line{}, fmt.Errorf("no data")
	}
	seq, err := seqIndex(*d.Seq)
	if err != nil {
		return Line{}, fmt.Errorf("seq %q is not a decimal string: %w", *d.Seq, err)
	}
	ts, err := time.Parse(time.RFC3339, *d.TS)
	if err != nil {
		return Line{}, fmt.Errorf("ts %q is not RFC 3339: %w", *d.TS, err)
	}
	return Line{Shard: *d.Shard, Seq: seq, Key: *d.Key, Topic: d.Topic, ClientID: d.ClientID,
		TS: ts, QoS: d.QoS, Props: d.Props, Data: *d.Data}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// seqIndex reads a sequence number as the gateway shows it (API, weir dump)
// and returns the record's index in its shard.
func seqIndex(s string) (uint64, error) {
	_, v, err := shards.DecodeSeq(s)
	return v, err
}
