package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/shards"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testClock is a clock tests move by hand. It starts at the real time so
// arrival timestamps look normal.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a store, a Server over it on an httptest listener, and an
// aws-sdk-go-v2 Kinesis client pointed at it.
type env struct {
	t     testing.TB
	dir   string
	clock *testClock
	store *shards.Store
	srv   *Server
	hs    *httptest.Server
	kc    *kinesis.Client
	hc    *http.Client
}

type envOptions struct {
	limits  ReadLimits
	streams []shards.StreamConfig
	secret  []byte
	dir     string
	// keys, if set, is written as the credentials file; api adds the
	// rest of the section (AllowedHosts, TLS).
	keys string
	api  Config
	// subscriptionLife shortens SubscribeToShard's 5 minutes.
	subscriptionLife time.Duration
	// keysDir is the store's encryption.keys_dir.
	keysDir string
}

// mustNew is New for configurations that must load.
func mustNew(t testing.TB, cfg Config, st *shards.Store, opts Options) *Server {
	t.Helper()
	s, err := New(cfg, st, opts)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	return s
}

// testKeyID and testSecret sign e.kc's requests; auth tests list them as
// an admin key on every stream.
const (
	testKeyID  = "AKIDTEST"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// unlimitedRate turns a stream's write limit off (an all-zero RateConfig
// would get the Kinesis defaults).
var unlimitedRate = shards.RateConfig{OnLimit: shards.OnLimitBackpress}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, clock: newTestClock(), dir: o.dir}
	if e.dir == "" {
		e.dir = t.TempDir()
	}
	if o.secret == nil {
		o.secret = []byte("0123456789abcdef0123456789abcdef")
	}
	e.open(o)
	return e
}

func (e *env) open(o envOptions) {
	t := e.t
	st, err := shards.Open(e.dir, shards.Options{
		Clock: e.clock.Now, NoRetentionLoop: true, Streams: o.streams,
		DefaultStream: shards.StreamConfig{Rate: unlimitedRate}.WithDefaults(),
		Durability:    shards.Durability{Fsync: shards.FsyncAlways},
		KeysDir:       o.keysDir,
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e.store = st
	cfg := o.api
	cfg.ReadLimits = o.limits
	if o.keys != "" {
		cfg.CredentialsFile = filepath.Join(t.TempDir(), "api-keys.yaml")
		if err := os.WriteFile(cfg.CredentialsFile, []byte(o.keys), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Tests fail authentication on purpose, all from 127.0.0.1: a guard
	// that never holds an answer keeps them fast (TestFailureGuard
	// tests the real one).
	lenient := newFailureGuard()
	lenient.burst = 1e9
	e.srv = mustNew(t, cfg, st, Options{Clock: e.clock.Now, Secret: o.secret, guard: lenient,
		subscriptionLife: o.subscriptionLife})
	e.hs = httptest.NewServer(e.srv.Handler())
	e.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	e.kc = kinesis.New(kinesis.Options{
		BaseEndpoint:     aws.String(e.hs.URL),
		Region:           "local",
		Credentials:      credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       e.hc,
	})
	t.Cleanup(e.close)
}

func (e *env) close() {
	if e.hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Close(ctx)
	e.hc.CloseIdleConnections()
	e.hs.CloseClientConnections()
	e.hs.Close()
	if err := e.store.Close(); err != nil {
		e.t.Errorf("close store: %v", err)
	}
	e.hs = nil
}

// restart closes the server and store and opens both again on the same
// directory, as a gateway restart would.
func (e *env) restart(o envOptions) {
	e.close()
	if o.secret == nil {
		o.secret = []byte("0123456789abcdef0123456789abcdef")
	}
	e.open(o)
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *env) createStream(name string, n int) {
	e.t.Helper()
	if _, err := e.kc.CreateStream(e.ctx(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))}); err != nil {
		e.t.Fatalf("CreateStream %s: %v", name, err)
	}
}

// call posts a raw JSON request for ops the SDK does not know.
func (e *env) call(target string, in any, out any) (int, error) {
	e.t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("X-Amz-Target", target)
	resp, err := e.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		return resp.StatusCode, &apiError{Status: resp.StatusCode, Type: eb.Type, Message: eb.Message}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("decode %s response %s: %v", target, b, err)
		}
	}
	return resp.StatusCode, nil
}

// errCode returns the Kinesis exception name of an SDK error.
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	var own *apiError
	if errors.As(err, &own) {
		return own.Type
	}
	if err == nil {
		return ""
	}
	return "not an API error: " + err.Error()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errCode(err); got != code {
		t.Fatalf("error = %v (code %q), want %s", err, got, code)
	}
}
