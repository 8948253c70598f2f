package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// promLogger sends promhttp's errors (a collector that failed during a
// scrape) to the API's log.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error().Msg(fmt.Sprint(v...)) }

// Target prefixes of the two operation sets served on POST /.
const (
	kinesisPrefix = "Kinesis_20131202."
	weirPrefix    = "WeirGateway_20261125."
)

// MaxBodyBytes bounds a request body: a PutRecords of 500 records and 5 MiB
// is about 6.7 MiB once base64-encoded, and JSON adds a little.
const MaxBodyBytes = 12 << 20

// Options are the Server's injectable parts.
type Options struct {
	Logger zerolog.Logger
	// Clock defaults to time.Now. It dates iterators, tokens and the read
	// limiters, so tests can expire an iterator without waiting.
	Clock func() time.Time
	// Secret keys the HMAC of shard iterators and page tokens. If nil a
	// random one is made, and iterators then die with the process; the
	// daemon passes a key kept in the data directory.
	Secret []byte
	// Region and AccountID appear in ARNs; defaults "local" and
	// "000000000000".
	Region    string
	AccountID string
	// Forwarders reports the running forwarders for DescribeGateway (the
	// daemon passes a closure over their Lag); nil means none.
	Forwarders func() []ForwarderStatus
	// Registry is where the API registers its metrics (until Close) and
	// what /metrics serves: the daemon passes the one registry every
	// part registers on. Nil: a registry of the Server's own.
	Registry *prometheus.Registry
	// NotReady, if set, adds the daemon's reasons for /readyz to fail
	// (storage closed, a listener down) to the API's own (failed shards,
	// closing).
	NotReady func() []string

	// guard replaces the failure guard (tests: their own clock and
	// limits); nil = newFailureGuard().
	guard *failureGuard
	// failedShards replaces FailedShards(store) for /readyz (tests: a
	// shard failure without a failing disk); nil = the store's.
	failedShards func() []FailedShard
	// subscriptionLife replaces the 5 minutes a SubscribeToShard lasts
	// (tests: expiry without waiting); 0 = 5 minutes.
	subscriptionLife time.Duration
}

// Server is the Kinesis-compatible HTTP API of one store.
type Server struct {
	cfg   Config
	store *shards.Store
	log   zerolog.Logger
	now   func() time.Time
	sign  signer

	region, account string

	forwarders func() []ForwarderStatus
	notReady   func() []string
	registry   *prometheus.Registry
	collector  *collector

	ops     map[string]opSpec
	handler http.Handler
	mux     *http.ServeMux // console.go: Handle
	metrics *apiMetrics

	// creds are the access keys (nil: none configured, signatures are not
	// checked); cert the TLS certificate (nil: plain HTTP). Both are
	// swapped whole by ReloadCredentials.
	creds atomic.Pointer[keySet]
	cert  atomic.Pointer[tls.Certificate]
	hosts hostPolicy
	guard *failureGuard

	failedShards func() []FailedShard

	// closing ends long-polls at Close, so Shutdown need not wait them out.
	closing   chan struct{}
	closeOnce sync.Once

	limMu      sync.Mutex
	limiters   map[string]*readLimiter // by stream + "/" + shard id [+ "/" + consumer]
	readLimits ReadLimits              // cfg.ReadLimits until Apply changes them

	// subs are the running SubscribeToShard responses, one per consumer
	// and shard (ops_subscribe.go).
	subMu   sync.Mutex
	subs    map[subKey]*subscription
	subLife time.Duration

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// ErrExposed is returned by New for a non-loopback listen with neither a
// credentials file nor allow_anonymous.
var ErrExposed = errors.New("api: a non-loopback listen needs api.credentials_file or api.allow_anonymous: true")

// ErrTLS wraps a certificate or key that cannot be loaded.
var ErrTLS = errors.New("api: bad TLS certificate or key")

// New builds a server over store, loading the credentials file and TLS
// certificate the configuration names. It listens only after Start;
// Handler can be mounted elsewhere (tests use httptest).
func New(cfg Config, store *shards.Store, opts Options) (*Server, error) {
	if cfg.Exposed() {
		return nil, fmt.Errorf("%w (listen %s)", ErrExposed, cfg.Listen)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Region == "" {
		opts.Region = "local"
	}
	if opts.AccountID == "" {
		opts.AccountID = "000000000000"
	}
	key := opts.Secret
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	s := &Server{
		cfg: cfg, store: store, log: opts.Logger, now: opts.Clock,
		sign:   signer{key: append([]byte(nil), key...)},
		region: opts.Region, account: opts.AccountID,
		forwarders: opts.Forwarders, notReady: opts.NotReady, registry: opts.Registry,
		closing:  make(chan struct{}),
		limiters: map[string]*readLimiter{}, readLimits: cfg.ReadLimits,
		metrics:      newAPIMetrics(),
		hosts:        newHostPolicy(cfg.AllowedHosts),
		guard:        opts.guard,
		failedShards: opts.failedShards,
		subs:         map[subKey]*subscription{}, subLife: opts.subscriptionLife,
	}
	if s.guard == nil {
		s.guard = newFailureGuard()
	}
	if s.failedShards == nil {
		s.failedShards = func() []FailedShard { return FailedShards(store) }
	}
	if err := s.ReloadCredentials(); err != nil {
		return nil, err
	}
	s.ops = s.operations()
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.collector = newCollector(s)
	if err := s.registry.Register(s.collector); err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	mux := http.NewServeMux()
	// Unsigned, as Prometheus cannot sign; the Host check still applies.
	// A collector that fails is reported in its place and the rest served.
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: promLogger{s.log},
	}))
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.HandleFunc("/", s.serveAPI)
	s.mux = mux
	s.handler = s.checkHost(mux)
	return s, nil
}

// ReloadCredentials re-reads the credentials file and the TLS certificate
// and key. What fails to load is reported (a credentials problem as
// file:line, errors.Is ErrCredentials; a certificate problem errors.Is
// ErrTLS) and the previous version stays in force; what loads replaces
// the old one for the next request or handshake.
func (s *Server) ReloadCredentials() error {
	var errs []error
	if f := s.cfg.CredentialsFile; f != "" {
		if cs, err := loadCredentials(f); err != nil {
			errs = append(errs, err)
		} else {
			s.creds.Store(cs)
		}
	}
	if t := s.cfg.TLS; t.Enabled() {
		if cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s, %s: %w", ErrTLS, t.CertFile, t.KeyFile, err))
		} else {
			s.cert.Store(&cert)
		}
	}
	return errors.Join(errs...)
}

// checkHost refuses a Host header that is not served (hosts.go) before
// anything else looks at the request.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hosts.allows(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		s.metrics.authFailure(reasonHost)
		s.log.Warn().Str("host", truncate(r.Host, 100)).Str("remote", r.RemoteAddr).Str("reason", reasonHost).
			Msg("api request refused: Host header not allowed")
		s.writeError(w, codecOf(r), newError(http.StatusForbidden, errAccessDenied,
			"Host %q is not served by this gateway; add its name to api.allowed_hosts (loopback names and IP addresses are always accepted)",
			truncate(r.Host, 100)))
	})
}

// Handler serves the API, /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on cfg.Listen and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.TLS.Enabled() {
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion: tls.VersionTLS12,
			// ALPN: h2 first, as every HTTP/2 client expects of a server
			// that has it.
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert.Load(), nil
			},
		})
	}
	srv := &http.Server{
		Handler:           s.handler,
		Protocols:         s.protocols(),
		ReadHeaderTimeout: 10 * time.Second,
		// The request, body included; not the handler. SubscribeToShard
		// lifts it once it has read its request (ops_subscribe.go).
		ReadTimeout: time.Minute,
		// No WriteTimeout: a long-poll legitimately holds a response for
		// up to 20 s, a subscription for 5 minutes.
		IdleTimeout: 2 * time.Minute,
	}
	s.mu.Lock()
	s.ln, s.srv, s.done = ln, srv, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("api server stopped")
		}
	}()
	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.cfg.TLS.Enabled()).
		Bool("credentials", s.cfg.CredentialsFile != "").Msg("kinesis api listening")
	return nil
}

// protocols is what the listener speaks: HTTP/1.1 always, and HTTP/2 —
// negotiated by ALPN over TLS, or in clear text with prior knowledge (h2c)
// on a plain port. The server tells the two apart on one port by the
// HTTP/2 connection preface. The JS SDK v3 talks HTTP/2 by default (its
// handler is NodeHttp2Handler, h2c for an http:// endpoint); Go and Python
// clients talk HTTP/1.1. The h2c Upgrade header of RFC 7540 (dropped by
// RFC 9113) is not served.
func (s *Server) protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if s.cfg.TLS.Enabled() {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return p
}

// Addr is the bound address (useful with port 0), or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close ends long-polls, stops accepting requests and waits (up to ctx) for
// those in flight.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.registry.Unregister(s.collector)
	})
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
}

// operation handles one X-Amz-Target.
type operation func(ctx context.Context, req *request) (any, error)

// opSpec is an operation and the permission it needs (access.go).
type opSpec struct {
	run  operation
	perm permission
}

// request is one decoded API call.
type request struct {
	codec codec
	body  []byte
	op    string // the metric label: Kinesis name, "Weir"+name for weir's
	// action is the operation's name in an AccessDenied message, perm the
	// permission it needs and who the key that signed it (nil when no
	// credentials are configured: everything is allowed).
	action string
	perm   permission
	who    *credential
}

func (r *request) decode(v any) error { return r.codec.decode(r.body, v) }

// operations is the one table of what is served and the permission each
// operation needs (API.md repeats it for clients).
func (s *Server) operations() map[string]opSpec {
	return map[string]opSpec{
		kinesisPrefix + "ListStreams":                   {s.listStreams, permRead},
		kinesisPrefix + "DescribeStream":                {s.describeStream, permRead},
		kinesisPrefix + "DescribeStreamSummary":         {s.describeStreamSummary, permRead},
		kinesisPrefix + "ListShards":                    {s.listShards, permRead},
		kinesisPrefix + "GetShardIterator":              {s.getShardIterator, permRead},
		kinesisPrefix + "GetRecords":                    {s.getRecords, permRead},
		kinesisPrefix + "DescribeStreamConsumer":        {s.describeConsumer, permRead},
		kinesisPrefix + "ListStreamConsumers":           {s.listConsumers, permRead},
		kinesisPrefix + "PutRecord":                     {s.putRecord, permWrite},
		kinesisPrefix + "PutRecords":                    {s.putRecords, permWrite},
		kinesisPrefix + "CreateStream":                  {s.createStream, permAdmin},
		kinesisPrefix + "DeleteStream":                  {s.deleteStream, permAdmin},
		kinesisPrefix + "SplitShard":                    {s.splitShard, permAdmin},
		kinesisPrefix + "MergeShards":                   {s.mergeShards, permAdmin},
		kinesisPrefix + "UpdateShardCount":              {s.updateShardCount, permAdmin},
		kinesisPrefix + "UpdateStreamMode":              {s.updateStreamMode, permAdmin},
		kinesisPrefix + "IncreaseStreamRetentionPeriod": {s.increaseRetention, permAdmin},
		kinesisPrefix + "DecreaseStreamRetentionPeriod": {s.decreaseRetention, permAdmin},
		kinesisPrefix + "StartStreamEncryption":         {s.startStreamEncryption, permAdmin},
		kinesisPrefix + "StopStreamEncryption":          {s.stopStreamEncryption, permAdmin},
		kinesisPrefix + "RegisterStreamConsumer":        {s.registerConsumer, permAdmin},
		kinesisPrefix + "DeregisterStreamConsumer":      {s.deregisterConsumer, permAdmin},
		kinesisPrefix + "SubscribeToShard":              {s.subscribeToShard, permRead},
		kinesisPrefix + "AddTagsToStream":               {s.addTags, permAdmin},
		kinesisPrefix + "RemoveTagsFromStream":          {s.removeTags, permAdmin},
		kinesisPrefix + "ListTagsForStream":             {s.listTags, permRead},
		kinesisPrefix + "EnableEnhancedMonitoring":      {s.enableMonitoring, permAdmin},
		kinesisPrefix + "DisableEnhancedMonitoring":     {s.disableMonitoring, permAdmin},
		kinesisPrefix + "DescribeLimits":                {s.describeLimits, permRead},
		// A forwarder's checkpoint (forwarder:<target>) needs admin.
		weirPrefix + "CommitCheckpoint": {s.commitCheckpoint, permRead},
		weirPrefix + "GetCheckpoints":   {s.getCheckpoints, permRead},
		weirPrefix + "GetRecords":       {s.longPollRecords, permRead},
		weirPrefix + "DescribeGateway":  {s.describeGateway, permRead},
	}
}

// serveAPI is POST /: read the body, authenticate it when credentials are
// configured, dispatch on X-Amz-Target, answer in the request's format.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := codecOf(r)
	target := r.Header.Get("X-Amz-Target")
	if target == "" && r.URL.RawQuery != "" {
		target = r.URL.Query().Get("X-Amz-Target") // a presigned URL
	}
	opName := target
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		opName = target[i+1:]
	}
	action := opName
	if strings.HasPrefix(target, weirPrefix) {
		opName = "Weir" + opName
	}
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)

	var (
		resp any
		err  error
		who  *credential
	)
	op, known := s.ops[target]
	if !known {
		opName = "unknown" // keeps metric labels bounded
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		err = newError(http.StatusNotFound, errUnknownOperation, "%s %s is not served: the API is POST / with X-Amz-Target", r.Method, r.URL.Path)
	} else {
		var body []byte
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			err = newError(http.StatusRequestEntityTooLarge, errValidation, "request body exceeds %d bytes", MaxBodyBytes)
		case err != nil:
			err = newError(http.StatusBadRequest, errSerialization, "read request body: %v", err)
		case s.creds.Load() != nil:
			// Before the operation is even looked up: an unsigned caller
			// learns nothing but that it must sign.
			if c, f := s.authenticate(r, body); f != nil {
				err = f
			} else {
				who = c
			}
		}
		switch {
		case err != nil:
		case !known:
			err = newError(http.StatusBadRequest, errUnknownOperation, "unknown operation %q in X-Amz-Target (supported: %s*, %s*)", target, kinesisPrefix, weirPrefix)
		case len(bytes.TrimSpace(body)) == 0:
			// As Kinesis: an operation without input still takes "{}".
			err = newError(http.StatusBadRequest, errSerialization, "the request body is empty; send {} for an operation without input")
		case !servedContentType(r):
			err = newError(http.StatusNotFound, errUnknownOperation, "Content-Type %q is not served: send %s or %s", r.Header.Get("Content-Type"), contentTypeJSON, contentTypeCBOR)
		default:
			ctx := r.Context()
			if who != nil {
				ctx = context.WithValue(ctx, identityKey{}, who.id)
			}
			resp, err = s.invoke(ctx, op.run, &request{codec: c, body: body, op: opName, action: action, perm: op.perm, who: who})
		}
	}
	if err != nil {
		ae := toAPIError(err)
		s.metrics.request(opName, ae.Type, time.Since(start))
		var af *authFailure
		switch {
		case errors.As(err, &af):
			s.refused(r, af, action)
		case ae.Status >= 500:
			s.log.Error().Str("op", opName).Str("request_id", reqID).Str("key", keyID(who)).Str("error", ae.Type).Msg(ae.Message)
		default:
			s.log.Debug().Str("op", opName).Str("key", keyID(who)).Str("error", ae.Type).Msg(ae.Message)
		}
		s.writeError(w, c, ae)
		return
	}
	s.metrics.request(opName, "", time.Since(start))
	if rs, ok := resp.(responseStreamer); ok {
		rs.stream(w, r)
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if st, ok := resp.(jsonStreamer); ok && c == codecJSON {
		w.Header().Set("Content-Type", c.contentType())
		w.WriteHeader(http.StatusOK)
		*buf, _ = st.writeJSON(w, (*buf)[:0])
		return
	}
	out, encErr := c.encode((*buf)[:0], resp)
	*buf = out
	if encErr != nil {
		ae := newError(http.StatusInternalServerError, errInternalFailure, "encode response: %v", encErr)
		s.log.Error().Str("op", opName).Err(encErr).Msg("encode response")
		s.writeError(w, c, ae)
		return
	}
	w.Header().Set("Content-Type", c.contentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// refused logs and counts a refused authentication or authorization (never
// a secret), and holds the answer of a failed authentication as the
// failure guard says.
func (s *Server) refused(r *http.Request, af *authFailure, action string) {
	s.metrics.authFailure(af.reason)
	s.log.Warn().Str("key", truncate(af.key, 128)).Str("remote", r.RemoteAddr).Str("op", truncate(action, 64)).
		Str("reason", af.reason).Str("error", af.Type).Msg(af.Message)
	if af.reason != reasonDenied {
		wait(r.Context(), s.closing, s.guard.delay(r.RemoteAddr))
	}
}

func keyID(c *credential) string {
	if c == nil {
		return ""
	}
	return c.id
}

// invoke runs an operation, turning a panic (a bug) into InternalFailure
// rather than a dropped connection the client would retry blindly.
func (s *Server) invoke(ctx context.Context, op operation, req *request) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error().Str("op", req.op).Interface("panic", p).Msg("api handler panicked")
			err = newError(http.StatusInternalServerError, errInternalFailure, "internal error in %s", req.op)
		}
	}()
	return op(ctx, req)
}

func (s *Server) writeError(w http.ResponseWriter, c codec, ae *apiError) {
	body, err := c.encode(nil, errorBody{Type: ae.Type, Message: ae.Message})
	if err != nil {
		body = []byte(`{"__type":"InternalFailure"}`)
	}
	w.Header().Set("Content-Type", c.contentType())
	w.Header().Set("X-Amzn-ErrorType", ae.Type)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(ae.Status)
	_, _ = w.Write(body)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Response buffers are reused. GetRecords answers, the only big ones, are
// streamed in 64 KiB chunks (jsonStreamer), so pooled buffers stay small;
// one that grew past maxPooledBuffer is dropped rather than kept.
const maxPooledBuffer = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuffer() *[]byte { return bufPool.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// limiter returns the read limiter of one shard.
func (s *Server) limiter(stream, shard string) *readLimiter {
	key := stream + "/" + shard
	s.limMu.Lock()
	defer s.limMu.Unlock()
	l, ok := s.limiters[key]
	if !ok {
		l = newReadLimiter(s.readLimits.CallsPerSec, s.readLimits.BytesPerSec.Bytes(), s.now())
		s.limiters[key] = l
	}
	return l
}

// forgetStream drops per-shard state of a deleted stream.
func (s *Server) forgetStream(stream string) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	for k := range s.limiters {
		if strings.HasPrefix(k, stream+"/") {
			delete(s.limiters, k)
		}
	}
}
