package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/shards"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeForwarder stands in for a forwarder: the console only reads its
// Lag and calls Pause/Resume.
type fakeForwarder struct{ held atomic.Bool }

func (f *fakeForwarder) Config() forwarder.Config {
	return forwarder.Config{Stream: "telemetry", TargetStream: "upstream"}
}
func (f *fakeForwarder) Consumer() string { return shards.ForwarderPrefix + "upstream" }
func (f *fakeForwarder) Lag() forwarder.Lag {
	if f.held.Load() {
		return forwarder.Lag{State: forwarder.State{Phase: forwarder.Paused, Reason: forwarder.ReasonOperator}, Records: 3}
	}
	return forwarder.Lag{State: forwarder.State{Phase: forwarder.Running}, Records: 3}
}
func (f *fakeForwarder) Pause()  { f.held.Store(true) }
func (f *fakeForwarder) Resume() { f.held.Store(false) }

// env is a store, a real API server (credentials from keys, if any)
// with the console mounted on it as the daemon does, on httptest.
type env struct {
	t        *testing.T
	clock    *clock
	store    *shards.Store
	srv      *api.Server
	con      *Console
	hs       *httptest.Server
	credPath string
	received atomic.Uint64
	clients  []ingest.ClientInfo
	fwd      *fakeForwarder
}

func newEnv(t *testing.T, keys string) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: time.Now()}, fwd: &fakeForwarder{}}
	dir := t.TempDir()
	st, err := shards.Open(filepath.Join(dir, "data"), shards.Options{NoRetentionLoop: true,
		Streams:       []shards.StreamConfig{shards.StreamConfig{Name: "telemetry", Shards: 2}.WithDefaults()},
		DefaultStream: shards.StreamConfig{}.WithDefaults(), Durability: shards.Durability{Fsync: shards.FsyncAlways}})
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	t.Cleanup(func() { st.Close() })
	cfg := api.Config{Listen: "127.0.0.1:0"}
	if keys != "" {
		e.credPath = filepath.Join(dir, "creds.yaml")
		if err := os.WriteFile(e.credPath, []byte(keys), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.CredentialsFile = e.credPath
	}
	e.srv, err = api.New(cfg, st, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.con = New(Sources{
		Store: st, DataDir: dir,
		Clients:    func() []ingest.ClientInfo { return e.clients },
		Ingest:     func() ingest.Stats { return ingest.Stats{Received: e.received.Load(), Connections: len(e.clients)} },
		Forwarders: func() []Forwarder { return []Forwarder{e.fwd} },
		Auth:       e.srv,
	}, Options{clock: e.clock.now, interval: time.Hour, slots: 8})
	e.srv.Handle("/console/", e.con.Handler())
	e.hs = httptest.NewServer(e.srv.Handler())
	t.Cleanup(func() {
		e.con.hub.close()
		e.hs.Close()
		_ = e.srv.Close(context.Background())
	})
	return e
}

// browser is an HTTP client with a cookie jar, as a browser tab.
type browser struct {
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

type reply struct {
	status int
	body   map[string]any
	raw    []byte
	header http.Header
}

func (b *browser) do(method, path string, body any, hdr ...string) reply {
	b.e.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.e.hs.URL+path, rd)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.csrf != "" {
		req.Header.Set(csrfHeader, b.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: raw, header: resp.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (b *browser) get(path string) reply { return b.do(http.MethodGet, path, nil) }
func (b *browser) post(path string, body any, hdr ...string) reply {
	return b.do(http.MethodPost, path, body, hdr...)
}

// session fetches the CSRF token as the page does.
func (b *browser) session() reply {
	r := b.get("/console/api/session")
	if s, _ := r.body["csrf"].(string); s != "" {
		b.csrf = s
	}
	return r
}

func (b *browser) login(id, secret string) reply {
	r := b.post("/console/api/login", map[string]string{"access_key_id": id, "secret_access_key": secret})
	if s, _ := r.body["csrf"].(string); s != "" {
		b.csrf = s
	}
	return r
}

func want(t *testing.T, r reply, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.raw)
	}
}

// sseReader reads events of a server-sent event stream.
type sseReader struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (e *env) openSSE(ctx context.Context, hc *http.Client, path string) *sseReader {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.hs.URL+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	return &sseReader{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event's name and data.
func (s *sseReader) next() (name, data string, ok bool) {
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "" && name != "":
			return name, data, true
		}
	}
	return "", "", false
}

func (s *sseReader) close() { s.resp.Body.Close() }

const testKeys = `
- access_key_id: READER
  secret_access_key: reader-secret-0123456789
  streams: ["*"]
  permissions: [read]
- access_key_id: ADMIN
  secret_access_key: admin-secret-0123456789
  streams: ["*"]
  permissions: [read, admin]
- access_key_id: WRITER
  secret_access_key: writer-secret-0123456789
  streams: ["*"]
  permissions: [write]
`
