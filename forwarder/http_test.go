package forwarder

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// httpBackend is the endpoint an http sink posts to: it decodes every
// body (json or ndjson, gzip or not), checks the headers, and keeps what
// it received in arrival order. fate decides each request's answer.
type httpBackend struct {
	t    testing.TB
	srv  *httptest.Server
	mu   sync.Mutex
	got  []Envelope
	at   []time.Time // receipt time of got[i]
	reqs int
	fate func(n int) (status int, retryAfter string, sleep time.Duration, keep bool)
	auth string
}

func newHTTPBackend(t testing.TB) *httpBackend {
	b := &httpBackend{t: t}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *httpBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.reqs++
	n := b.reqs
	fate, auth := b.fate, b.auth
	b.mu.Unlock()
	if r.Method != http.MethodPost {
		b.t.Errorf("method %s", r.Method)
	}
	if auth != "" && r.Header.Get("Authorization") != auth {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "bad token")
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			b.t.Errorf("gzip: %v", err)
			w.WriteHeader(400)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return // the client gave up (timeout)
	}
	var envs []Envelope
	switch r.Header.Get("Content-Type") {
	case "application/json":
		if err := json.Unmarshal(raw, &envs); err != nil {
			b.t.Errorf("json body: %v", err)
		}
	case "application/x-ndjson":
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			var e Envelope
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				b.t.Errorf("ndjson line: %v", err)
			}
			envs = append(envs, e)
		}
	default:
		b.t.Errorf("content type %q", r.Header.Get("Content-Type"))
	}
	status, retryAfter, sleep, keep := 200, "", time.Duration(0), true
	if fate != nil {
		status, retryAfter, sleep, keep = fate(n)
	}
	if keep {
		now := time.Now()
		b.mu.Lock()
		b.got = append(b.got, envs...)
		for range envs {
			b.at = append(b.at, now)
		}
		b.mu.Unlock()
	}
	if sleep > 0 {
		time.Sleep(sleep)
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
}

func (b *httpBackend) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reqs
}

func (b *httpBackend) received() []Envelope {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Envelope(nil), b.got...)
}

// checkLedger: every record of every key arrived, and the first
// occurrences of each key are in the order written.
func checkLedger(t testing.TB, got []Envelope, keys []string, perKey int) (dups int) {
	t.Helper()
	next := map[string]int{}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			dups++
			continue
		}
		seen[e.ID] = true
		want := string(payload(e.Key, next[e.Key]))
		if string(e.Data) != want {
			t.Fatalf("key %s: first occurrence %q, want %q (order broken or record missing)", e.Key, e.Data, want)
		}
		next[e.Key]++
	}
	for _, k := range keys {
		if next[k] != perKey {
			t.Errorf("key %s: %d records delivered, want %d", k, next[k], perKey)
		}
	}
	return dups
}

func httpCfg(url string) Config {
	c := testCfg()
	c.Kind, c.Name, c.TargetStream, c.Endpoint = KindHTTP, "backend", "", ""
	c.HTTP = HTTPConfig{URL: url}
	return c.WithDefaults()
}

func TestHTTPSinkLedgerUnderFaults(t *testing.T) {
	for _, tc := range []struct{ format, compression string }{
		{FormatJSON, CompressionNone},
		{FormatNDJSON, CompressionGzip},
	} {
		t.Run(tc.format+"_"+tc.compression, func(t *testing.T) {
			be := newHTTPBackend(t)
			rnd := rand.New(rand.NewPCG(7, 8))
			var mu sync.Mutex
			var throttled, timedOut, failed atomic.Int64
			be.fate = func(n int) (int, string, time.Duration, bool) {
				mu.Lock()
				x := rnd.IntN(100)
				mu.Unlock()
				// The first requests meet every fault once, then they come
				// at random.
				switch n {
				case 1:
					x = 17
				case 2:
					x = 0
				case 3:
					x = 12
				case 4:
					x = 22
				}
				switch {
				case x < 10:
					failed.Add(1)
					return 503, "", 0, false
				case x < 15:
					throttled.Add(1)
					return 429, "0", 0, false
				case x < 20:
					// Stored, but the answer comes after the client gave up:
					// the ambiguous failure that makes duplicates.
					timedOut.Add(1)
					return 200, "", 1200 * time.Millisecond, true
				case x < 25:
					failed.Add(1)
					return 500, "", 0, true // stored and still failed: duplicates
				}
				return 200, "", 0, true
			}
			cfg := httpCfg(be.srv.URL)
			cfg.HTTP.Format, cfg.HTTP.Compression = tc.format, tc.compression
			cfg.RequestTimeout = conf.Duration(time.Second)
			src := newMemSource("shardId-000000000000", "shardId-000000000001")
			ck := newMemCkpt()
			f, err := New(cfg, src, ck, testOpts(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			if f.Consumer() != "forwarder:backend" {
				t.Fatalf("consumer %q", f.Consumer())
			}
			keys := []string{"a", "b", "c", "d", "e", "f"}
			shs := []*memShard{src.shard("shardId-000000000000"), src.shard("shardId-000000000001")}
			const perKey = 300
			writeRecords(shs, keys, 0, perKey/2)
			stop := start(t, f)
			for n := perKey / 2; n < perKey; n += 10 { // live records, in many small batches
				writeRecords(shs, keys, n, n+10)
				time.Sleep(20 * time.Millisecond)
			}
			waitFor(t, 30*time.Second, "every record delivered", func() bool {
				return f.Lag().Sent == int64(perKey*len(keys))
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			dups := checkLedger(t, be.received(), keys, perKey)
			lag := f.Lag()
			t.Logf("requests %d: 5xx %d, 429 %d, timeouts %d; duplicates %d, resent %d", be.requests(), failed.Load(), throttled.Load(), timedOut.Load(), dups, lag.Resent)
			if failed.Load() == 0 || throttled.Load() == 0 || timedOut.Load() == 0 || lag.Resent == 0 {
				t.Errorf("faults not exercised: %d %d %d resent %d", failed.Load(), throttled.Load(), timedOut.Load(), lag.Resent)
			}
			if lag.Records != 0 || lag.Lost != 0 {
				t.Errorf("lag %+v", lag)
			}
			got, _ := ck.Get("telemetry", "forwarder:backend")
			if want := uint64(perKey * len(keys) / 2); got["shardId-000000000000"] != want || got["shardId-000000000001"] != want {
				t.Errorf("checkpoints %v", got)
			}
		})
	}
}

// A 4xx other than 429/408 pauses the sink with the status in its state;
// nothing is dropped, and it resumes by itself once the endpoint accepts
// (here: the token file is fixed, and the sink re-reads it).
func TestHTTPSinkPausesOn4xxAndResumes(t *testing.T) {
	be := newHTTPBackend(t)
	be.auth = "Bearer right"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("Bearer wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WEIR_TEST_SOURCE", "gw-1")
	cfg := httpCfg(be.srv.URL)
	cfg.HTTP.Headers = []Header{{Name: "Authorization", File: tokenFile}, {Name: "X-Source", Env: "WEIR_TEST_SOURCE"}}
	src := newMemSource("shardId-000000000000")
	f, err := New(cfg, src, newMemCkpt(), testOpts(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"k1", "k2"}
	writeRecords([]*memShard{src.shard("shardId-000000000000")}, keys, 0, 50)
	start(t, f)
	waitFor(t, 10*time.Second, "paused", func() bool { return strings.HasPrefix(f.Lag().State.String(), "paused: HTTP403") })
	lag := f.Lag()
	if lag.Sent != 0 || lag.Records != 100 || !strings.Contains(lag.LastError, "bad token") {
		t.Fatalf("paused lag %+v", lag)
	}
	if err := os.WriteFile(tokenFile, []byte("Bearer right\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resumed and delivered", func() bool { return f.Lag().Sent == 100 })
	if st := f.Lag().State; st.Phase != Running {
		t.Errorf("state after fix %q", st)
	}
	checkLedger(t, be.received(), keys, 50)
}

func TestHTTPSinkMissingEnvHeader(t *testing.T) {
	cfg := httpCfg("http://127.0.0.1:1/x")
	cfg.HTTP.Headers = []Header{{Name: "Authorization", Env: "WEIR_TEST_NOT_SET_ANYWHERE"}}
	_, err := New(cfg, newMemSource(), newMemCkpt(), testOpts(t, nil))
	if err == nil || !strings.Contains(err.Error(), "WEIR_TEST_NOT_SET_ANYWHERE") {
		t.Fatalf("New = %v, want an error naming the variable", err)
	}
}

// Records the filter passes over are not sent and still move the
// watermark.
func TestHTTPSinkFilter(t *testing.T) {
	be := newHTTPBackend(t)
	cfg := httpCfg(be.srv.URL)
	cfg.Filter = Filter{Topics: []string{"plant/+/alarm"}, JSON: []JSONCond{{Path: "level", Equals: "2"}}}
	src := newMemSource("shardId-000000000000")
	ck := newMemCkpt()
	f, err := New(cfg, src, ck, testOpts(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	sh := src.shard("shardId-000000000000")
	sh.append(
		shards.Record{Key: "a", Topic: "plant/1/alarm", Data: []byte(`{"level":2}`)},
		shards.Record{Key: "a", Topic: "plant/1/alarm", Data: []byte(`{"level":1}`)},
		shards.Record{Key: "a", Topic: "plant/1/temp", Data: []byte(`{"level":2}`)},
		shards.Record{Key: "b", Topic: "plant/2/alarm", Data: []byte(`{"level":2.0,"x":1}`)},
		shards.Record{Key: "b", Topic: "plant/2/alarm", Data: []byte(`not json`)},
	)
	stop := start(t, f)
	waitFor(t, 5*time.Second, "filtered and checkpointed", func() bool {
		got, _ := ck.Get("telemetry", "forwarder:backend")
		return got["shardId-000000000000"] == 5
	})
	stop()
	got := be.received()
	if len(got) != 2 || got[0].Seq != shards.FormatIndex(1) || got[1].Seq != shards.FormatIndex(4) {
		t.Fatalf("delivered %+v, want records 1 and 4", got)
	}
	if lag := f.Lag(); lag.Filtered != 3 || lag.Sent != 2 || lag.Lost != 0 || lag.Records != 0 {
		t.Errorf("lag %+v", lag)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "3": 3 * time.Second, " 7 ": 7 * time.Second, "-5": 0, "soon": 0, "99999": 10 * time.Minute,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	// The engine waits at least what the server asked for.
	s := &httpSink{}
	fl := s.classify(&HTTPStatusError{Status: 429, RetryAfter: 3 * time.Second})
	if fl.kind != transient || fl.retryAfter != 3*time.Second || fl.code != "HTTP429" {
		t.Errorf("429 classified %+v", fl)
	}
	for status, kind := range map[int]failKind{400: permanent, 401: permanent, 404: permanent, 408: transient, 413: permanent, 500: transient, 503: transient} {
		if fl := s.classify(&HTTPStatusError{Status: status}); fl.kind != kind || (kind == permanent && fl.fix == "") {
			t.Errorf("HTTP %d classified %+v", status, fl)
		}
	}
}
