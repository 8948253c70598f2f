package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

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
	// ExtraMetrics, if set, adds the families of other parts (the
	// daemon: MQTT ingest counters, forwarders) to /metrics. Its family
	// names must not clash with the API's.
	ExtraMetrics func(m *MetricsWriter)
}

// Server is the Kinesis-compatible HTTP API of one store.
type Server struct {
	cfg   Config
	store *shards.Store
	log   zerolog.Logger
	now   func() time.Time
	sign  signer

	region, account string

	forwarders   func() []ForwarderStatus
	extraMetrics func(m *MetricsWriter)

	ops     map[string]operation
	handler http.Handler
	metrics *apiMetrics

	// closing ends long-polls at Close, so Shutdown need not wait them out.
	closing   chan struct{}
	closeOnce sync.Once

	limMu    sync.Mutex
	limiters map[string]*readLimiter // by stream + "/" + shard id

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// New builds a server over store. It listens only after Start; Handler can
// be mounted elsewhere (tests use httptest).
func New(cfg Config, store *shards.Store, opts Options) *Server {
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
		forwarders: opts.Forwarders, extraMetrics: opts.ExtraMetrics,
		closing:  make(chan struct{}),
		limiters: map[string]*readLimiter{},
		metrics:  newAPIMetrics(),
	}
	s.ops = s.operations()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("/", s.serveAPI)
	s.handler = mux
	return s
}

// Handler serves the API, /metrics and /healthz.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on cfg.Listen and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // the request, body included; not the handler
		// No WriteTimeout: a long-poll legitimately holds a response for
		// up to 20 s.
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
	s.log.Info().Str("addr", ln.Addr().String()).Msg("kinesis api listening")
	return nil
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
	s.closeOnce.Do(func() { close(s.closing) })
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

// request is one decoded API call.
type request struct {
	codec codec
	body  []byte
	op    string
}

func (r *request) decode(v any) error { return r.codec.decode(r.body, v) }

func (s *Server) operations() map[string]operation {
	return map[string]operation{
		kinesisPrefix + "ListStreams":                   s.listStreams,
		kinesisPrefix + "CreateStream":                  s.createStream,
		kinesisPrefix + "DeleteStream":                  s.deleteStream,
		kinesisPrefix + "DescribeStream":                s.describeStream,
		kinesisPrefix + "DescribeStreamSummary":         s.describeStreamSummary,
		kinesisPrefix + "ListShards":                    s.listShards,
		kinesisPrefix + "SplitShard":                    s.splitShard,
		kinesisPrefix + "MergeShards":                   s.mergeShards,
		kinesisPrefix + "UpdateShardCount":              s.updateShardCount,
		kinesisPrefix + "IncreaseStreamRetentionPeriod": s.increaseRetention,
		kinesisPrefix + "DecreaseStreamRetentionPeriod": s.decreaseRetention,
		kinesisPrefix + "PutRecord":                     s.putRecord,
		kinesisPrefix + "PutRecords":                    s.putRecords,
		kinesisPrefix + "GetShardIterator":              s.getShardIterator,
		kinesisPrefix + "GetRecords":                    s.getRecords,
		kinesisPrefix + "RegisterStreamConsumer":        s.registerConsumer,
		kinesisPrefix + "DescribeStreamConsumer":        s.describeConsumer,
		kinesisPrefix + "ListStreamConsumers":           s.listConsumers,
		kinesisPrefix + "DeregisterStreamConsumer":      s.deregisterConsumer,
		weirPrefix + "CommitCheckpoint":                 s.commitCheckpoint,
		weirPrefix + "GetCheckpoints":                   s.getCheckpoints,
		weirPrefix + "GetRecords":                       s.longPollRecords,
		weirPrefix + "DescribeGateway":                  s.describeGateway,
	}
}

// serveAPI is POST /: read the body, dispatch on X-Amz-Target, answer in
// the request's format. The Authorization header (SigV4) is accepted and
// not checked.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := codecOf(r)
	target := r.Header.Get("X-Amz-Target")
	opName := target
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		opName = target[i+1:]
	}
	if strings.HasPrefix(target, weirPrefix) {
		opName = "Weir" + opName
	}
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)

	var (
		resp any
		err  error
	)
	op, known := s.ops[target]
	if !known {
		opName = "unknown" // keeps metric labels bounded
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		err = newError(http.StatusNotFound, errUnknownOperation, "%s %s is not served: the API is POST / with X-Amz-Target", r.Method, r.URL.Path)
	case !known:
		err = newError(http.StatusBadRequest, errUnknownOperation, "unknown operation %q in X-Amz-Target (supported: %s*, %s*)", target, kinesisPrefix, weirPrefix)
	default:
		var body []byte
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = newError(http.StatusRequestEntityTooLarge, errValidation, "request body exceeds %d bytes", MaxBodyBytes)
			} else {
				err = newError(http.StatusBadRequest, errSerialization, "read request body: %v", err)
			}
		} else {
			resp, err = s.invoke(r.Context(), op, &request{codec: c, body: body, op: opName})
		}
	}
	if err != nil {
		ae := toAPIError(err)
		s.metrics.request(opName, ae.Type, time.Since(start))
		if ae.Status >= 500 {
			s.log.Error().Str("op", opName).Str("request_id", reqID).Str("error", ae.Type).Msg(ae.Message)
		} else {
			s.log.Debug().Str("op", opName).Str("error", ae.Type).Msg(ae.Message)
		}
		s.writeError(w, c, ae)
		return
	}
	s.metrics.request(opName, "", time.Since(start))
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
		l = newReadLimiter(s.cfg.ReadLimits.CallsPerSec, s.cfg.ReadLimits.BytesPerSec.Bytes(), s.now())
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
