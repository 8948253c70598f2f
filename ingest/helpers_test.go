package ingest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

func TestMain(m *testing.M) {
	if runIdleClientsChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// sunk is one record a fakeSink accepted.
type sunk struct {
	stream string
	rec    shards.Record
	opts   shards.AppendOptions
}

// fakeSink records appends; fn, when set, runs first and can block or
// refuse.
type fakeSink struct {
	fn func(ctx context.Context, stream string, rec *shards.Record, o shards.AppendOptions) error

	mu   sync.Mutex
	recs []sunk
}

func (s *fakeSink) Append(ctx context.Context, stream string, rec *shards.Record, o shards.AppendOptions) (shards.Appended, error) {
	if s.fn != nil {
		if err := s.fn(ctx, stream, rec, o); err != nil {
			return shards.Appended{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, sunk{stream: stream, rec: *rec, opts: o})
	return shards.Appended{ShardID: "shardId-000000000000", Seq: uint64(len(s.recs))}, nil
}

func (s *fakeSink) stored() []sunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunk(nil), s.recs...)
}

// logBuffer is a goroutine-safe log destination tests can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), sub)
}

func testConfig() Config {
	return Config{
		Listen:           "127.0.0.1:0",
		ConnectTimeout:   conf.Duration(5 * time.Second),
		MaxPendingWrites: 32,
		ReceiveMaximum:   64,
		MaxInflight:      64,
	}
}

// defaultRoutes: telemetry keyed by device, commands unrouted.
var defaultRoutes = []Route{
	{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"},
}

type brokerOpts struct {
	cfg    func(*Config)
	routes []Route
	log    *logBuffer
	maxRec int64
	opts   func(*Options) // access control and the like
}

// startBroker runs a broker on a free loopback port until the test ends.
func startBroker(t testing.TB, sink Sink, o brokerOpts) *Broker {
	t.Helper()
	cfg := testConfig()
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	routes := o.routes
	if routes == nil {
		routes = defaultRoutes
	}
	log := zerolog.Nop()
	if o.log != nil {
		log = zerolog.New(o.log).Level(zerolog.DebugLevel)
	}
	opts := Options{Logger: log, MaxRecordSize: o.maxRec}
	if o.opts != nil {
		o.opts(&opts)
	}
	b, err := New(cfg, routes, sink, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			var dump strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Errorf("Close: %v; goroutines:\n%s", err, dump.String())
		}
	})
	return b
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialAt opens a TCP connection to addr (closed when the test ends) and
// returns when it was opened.
func dialAt(t testing.TB, addr net.Addr) (net.Conn, time.Time) {
	t.Helper()
	start := time.Now()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, start
}

// expectDropped checks that the broker closes c, opened at start, once
// the connect timeout has passed: not before half of it, and within ten
// times it. What the broker writes first (a TLS server's flight) is read
// and ignored.
func expectDropped(t testing.TB, name string, c net.Conn, start time.Time, timeout time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * timeout))
	var err error
	for err == nil {
		_, err = c.Read(make([]byte, 4096))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: connection not closed by the broker within %v", name, 10*timeout)
		return
	}
	if el := time.Since(start); el < timeout/2 {
		t.Errorf("%s: closed after %v, before the connect timeout", name, el)
	}
}
