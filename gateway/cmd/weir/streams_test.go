package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/shards"
)

func TestStreamsShowsConsumerAndForwarderLag(t *testing.T) {
	// The forwarder gets static credentials from the environment and an
	// upstream where nothing listens, so it retries in backoff and all its
	// records stay lag.
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	g := startGateway(t, gatewayOptions{
		streams: []shards.StreamConfig{{Name: "quiet", Shards: 1}},
		forwarders: []forwarder.Config{{Stream: "telemetry", TargetStream: "cloud", Region: "eu-west-1",
			Endpoint: "http://" + closedPort(t)}},
	})
	counts := map[string]int{}
	g.publish("telemetry", 20, 6, counts)
	if _, errs, code := weir(t, "read", "telemetry", "--api", g.api, "--consumer", "dash", "--limit", "5"); code != 0 {
		t.Fatalf("read: %s", errs)
	}

	var desc api.DescribeGatewayOutput
	forwarderOf := func() *api.GatewayConsumer {
		for i, c := range desc.Streams[1].Consumers {
			if c.ConsumerName == "forwarder:cloud" {
				return &desc.Streams[1].Consumers[i]
			}
		}
		return nil
	}
	waitFor(t, "the forwarder reports its backlog in backoff", func() bool {
		out, errs, code := weir(t, "streams", "--api", g.api, "--json")
		if code != 0 {
			t.Fatalf("streams --json: exit %d: %s", code, errs)
		}
		desc = api.DescribeGatewayOutput{}
		if err := json.Unmarshal([]byte(out), &desc); err != nil {
			t.Fatalf("streams --json printed %q: %v", out, err)
		}
		f := forwarderOf()
		return f != nil && f.LagRecords == 20 && f.State == "backoff" && f.LastError != ""
	})
	if len(desc.Streams) != 2 || desc.Streams[0].StreamName != "quiet" || desc.Streams[1].StreamName != "telemetry" {
		t.Fatalf("streams %+v", desc.Streams)
	}
	tel := desc.Streams[1]
	if tel.Records != 20 || tel.OpenShardCount != 4 || tel.DataBytes <= 0 || len(tel.Consumers) != 2 {
		t.Fatalf("telemetry: %+v", tel)
	}
	// Bytes are what the disk holds: the stream's log, a whole 16 MiB
	// segment preallocated, against a few KiB of records.
	if tel.Bytes < 16<<20 || tel.DataBytes > 16<<10 {
		t.Fatalf("telemetry: Bytes %d (allocated), DataBytes %d", tel.Bytes, tel.DataBytes)
	}
	if d := desc.DataDir; d == nil || d.FreeBytes <= 0 || d.SizeBytes < d.FreeBytes {
		t.Fatalf("DataDir %+v", d)
	}
	dash := tel.Consumers[0]
	if dash.ConsumerName != "dash" || dash.Kind != "consumer" || dash.LagRecords != 15 {
		t.Fatalf("dash: %+v", dash)
	}
	if f := forwarderOf(); f.Kind != "forwarder" || f.TargetStream != "cloud" || f.LagBytes <= 0 || f.LagSeconds <= 0 {
		t.Fatalf("forwarder: %+v", f)
	}

	out, errs, code := weir(t, "streams", "--api", g.api)
	if code != 0 {
		t.Fatalf("streams: exit %d: %s", code, errs)
	}
	for _, re := range []string{
		`(?m)^STREAM +STATUS +OPEN +CLOSED +RETENTION +RECORDS +DATA +DISK$`,
		// An empty stream takes a whole preallocated 16 MiB segment, and
		// four shards share one log: one segment too.
		`(?m)^quiet +ACTIVE +1 +0 +24h +0 +\d+ B +1[6-9]\.\d MiB$`,
		`(?m)^telemetry +ACTIVE +4 +0 +24h +20 +\d+(\.\d)? (B|KiB) +(1[6-9]|[2-9]\d)\.\d MiB$`,
		`(?m)^STREAM +CONSUMER +LAG +LAG BYTES +OLDEST +LOST +STATE$`,
		`(?m)^telemetry +dash +15 +- +[0-9.]+m?s +0 +-$`,
		`(?m)^telemetry +forwarder:cloud +20 +\d+ B +[0-9.]+m?s +0 +backoff$`,
		`(?m)^telemetry/forwarder:cloud: last error: \S.*$`,
		`(?m)^data directory: \d+(\.\d)? [KMGT]iB free of \d+(\.\d)? [KMGT]iB \(\d+%\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("streams output lacks %s", re)
		}
	}
	// Columns line up: every row of a table starts its columns at the
	// same offsets as its header.
	tables := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(tables) != 4 {
		t.Fatalf("want two tables, the forwarder's note and the data directory:\n%s", out)
	}
	for _, l := range lines(out) {
		if len(l) > noteWidth {
			t.Errorf("line of %d characters, want at most %d: %q", len(l), noteWidth, l)
		}
	}
	for _, tb := range tables[:2] {
		rows := strings.Split(tb, "\n")
		col := strings.Index(rows[0], "STATUS")
		if strings.HasPrefix(rows[0], "STREAM  ") && strings.Contains(rows[0], "CONSUMER") {
			col = strings.Index(rows[0], "CONSUMER")
		}
		for _, r := range rows[1:] {
			if len(r) <= col || r[col-1] != ' ' || r[col] == ' ' {
				t.Errorf("row %q is not aligned with header %q", r, rows[0])
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

func TestStreamsWithoutStreams(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	if err := g.d.Store().DeleteStream("telemetry"); err != nil {
		t.Fatal(err)
	}
	out, errs, code := weir(t, "streams", "--api", g.api)
	if code != 0 || out != "no streams\n" {
		t.Fatalf("exit %d, %q (%s)", code, out, errs)
	}
}

// TestAPIFlags: --ca-file trusts an https gateway's own CA, --profile
// picks the key that signs, and an answer asking for credentials says how
// to give them.
func TestAPIFlags(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("[lab]\naws_access_key_id = AKIDLAB\naws_secret_access_key = s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CA_BUNDLE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": creds} {
		t.Setenv(k, v)
	}
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}`))
			return
		}
		_, _ = w.Write([]byte(`{"Streams":[{"StreamName":"secured","StreamStatus":"ACTIVE","OpenShardCount":1}]}`))
	}))
	defer srv.Close()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errs, code := weir(t, "streams", "--api", srv.URL, "--ca-file", ca, "--profile", "lab")
	mu.Lock()
	signedBy := strings.Join(auth, " ")
	mu.Unlock()
	if code != 0 || !strings.Contains(out, "secured") || !strings.Contains(signedBy, "Credential=AKIDLAB/") {
		t.Fatalf("streams with --ca-file and --profile: exit %d, out %q, stderr %q, Authorization %q", code, out, errs, signedBy)
	}
	if _, errs, code := weir(t, "streams", "--api", srv.URL, "--profile", "lab"); code != 1 ||
		!strings.Contains(errs, "cannot reach the gateway") || !strings.Contains(errs, "certificate") {
		t.Fatalf("without --ca-file: exit %d, stderr %q", code, errs)
	}
	if _, errs, code := weir(t, "streams", "--api", srv.URL, "--ca-file", ca); code != 1 ||
		!strings.Contains(errs, "MissingAuthenticationTokenException") || !strings.Contains(errs, "--profile") {
		t.Fatalf("unsigned against a gateway that wants keys: exit %d, stderr %q", code, errs)
	}
	if _, errs, code := weir(t, "read", "secured", "--api", srv.URL, "--ca-file", ca); code != 1 ||
		!strings.Contains(errs, "requires API credentials") {
		t.Fatalf("read, unsigned: exit %d, stderr %q", code, errs)
	}
	if _, errs, code := weir(t, "streams", "--api", srv.URL, "--profile", "nosuch"); code != 2 || !strings.Contains(errs, "nosuch") {
		t.Fatalf("unknown profile: exit %d, stderr %q", code, errs)
	}
	for _, cmd := range []string{"read", "streams"} {
		_, errs, code := weir(t, cmd, "--help")
		if code != 0 || !strings.Contains(errs, "Credentials:") || !strings.Contains(errs, "-profile") || !strings.Contains(errs, "-ca-file") {
			t.Errorf("weir %s --help: exit %d, lacks the credentials section or flags:\n%s", cmd, code, errs)
		}
	}
}
