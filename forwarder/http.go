package forwarder

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/weir-gateway/weir/shards"
)

// HTTP sink limits: a POST carries up to 500 records and about 4 MiB of
// JSON before compression, and no single record over 4 MiB.
const (
	httpMaxRecords    = 500
	httpMaxBatchBytes = 4 << 20
)

// HTTPStatusError is a non-2xx answer of an http sink's endpoint.
type HTTPStatusError struct {
	Status     int
	Body       string        // the start of the response body, for the log
	RetryAfter time.Duration // from Retry-After, 0 if absent
}

func (e *HTTPStatusError) Error() string {
	msg := fmt.Sprintf("%v: HTTP %d %s", ErrHTTPStatus, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func (e *HTTPStatusError) Unwrap() error { return ErrHTTPStatus }

// retryable: throttling (429), timeouts (408) and server errors; any
// other status means the request itself is refused and resending it
// as it is cannot help.
func (e *HTTPStatusError) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// httpSink POSTs batches of JSON envelopes: a JSON array or NDJSON,
// optionally gzipped. A POST succeeds or fails whole, so a batch may hold
// several records of one key, in order (limits.multi).
type httpSink struct {
	cfg     Config
	client  aws.HTTPClient
	envl    envelopeFunc
	headers []httpHeader
	ctype   string
}

type httpHeader struct {
	name, value string
	file        string // re-read on every request, so a rotated token is picked up
}

func newHTTPSink(cfg Config, opts Options) (*httpSink, error) {
	h := cfg.HTTP
	s := &httpSink{cfg: cfg, client: opts.HTTPClient, envl: jsonEnvelope(opts.GatewayID, cfg.Stream), ctype: "application/json"}
	if h.Format == FormatNDJSON {
		s.ctype = "application/x-ndjson"
	}
	for _, hd := range h.Headers {
		switch {
		case hd.Env != "":
			v, ok := os.LookupEnv(hd.Env)
			if !ok || v == "" {
				return nil, fmt.Errorf("%w: header %s: environment variable %s is not set", ErrSecret, hd.Name, hd.Env)
			}
			s.headers = append(s.headers, httpHeader{name: hd.Name, value: v})
		case hd.File != "":
			if _, err := readSecretFile(hd.File); err != nil {
				return nil, fmt.Errorf("header %s: %w", hd.Name, err)
			}
			s.headers = append(s.headers, httpHeader{name: hd.Name, file: hd.File})
		default:
			s.headers = append(s.headers, httpHeader{name: hd.Name, value: hd.Value})
		}
	}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.MaxInFlight + 4
		tr.MaxIdleConns = cfg.MaxInFlight + 4
		s.client = &http.Client{Transport: tr}
	}
	return s, nil
}

// readSecretFile reads a secret kept in a file, without its trailing line
// break.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSecret, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" || strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("%w: %s must hold one non-empty line", ErrSecret, path)
	}
	return v, nil
}

func (s *httpSink) limits() limits {
	return limits{maxItems: httpMaxRecords, maxRecords: httpMaxRecords, maxBatchBytes: httpMaxBatchBytes,
		maxItemBytes: httpMaxBatchBytes, multi: true}
}

func (s *httpSink) encode(shard string, r *shards.Record) ([]byte, error) {
	b, err := s.envl(shard, r)
	if err == nil && len(b) > httpMaxBatchBytes {
		err = fmt.Errorf("%d bytes after the json envelope, an http sink sends at most %d per record", len(b), httpMaxBatchBytes)
	}
	return b, err
}

// body renders the batch: items in batch order, each item's records in
// key order.
func (s *httpSink) body(b *batch) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(b.bytes + b.records() + 2)
	var w io.Writer = &buf
	var zw *gzip.Writer
	if s.cfg.HTTP.Compression == CompressionGzip {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	ndjson := s.cfg.HTTP.Format == FormatNDJSON
	first := true
	put := func(p []byte) {
		_, _ = w.Write(p) // bytes.Buffer and gzip into it do not fail
	}
	if !ndjson {
		put([]byte{'['})
	}
	for _, it := range b.items {
		for _, e := range it.entries {
			if !ndjson && !first {
				put([]byte{','})
			}
			first = false
			put(e.payload)
			if ndjson {
				put([]byte{'\n'})
			}
		}
	}
	if !ndjson {
		put([]byte{']'})
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func (s *httpSink) send(ctx context.Context, b *batch) (sendOutcome, error) {
	body, err := s.body(b)
	if err != nil {
		return sendOutcome{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.HTTP.URL, bytes.NewReader(body))
	if err != nil {
		return sendOutcome{}, err
	}
	req.Header.Set("Content-Type", s.ctype)
	req.Header.Set("User-Agent", "weir")
	if s.cfg.HTTP.Compression == CompressionGzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for _, h := range s.headers {
		v := h.value
		if h.file != "" {
			if v, err = readSecretFile(h.file); err != nil {
				return sendOutcome{}, fmt.Errorf("header %s: %w", h.name, err)
			}
		}
		req.Header.Set(h.name, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return sendOutcome{}, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // so the connection is reused
	if resp.StatusCode/100 != 2 {
		return sendOutcome{}, &HTTPStatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(snippet)),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return sendOutcome{res: make([]entryResult, len(b.items))}, nil // all entryOK
}

// parseRetryAfter reads delay-seconds or an HTTP date; at most 10 minutes
// are honoured, so a broken header cannot stall the sink for days.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// maxRetryAfter bounds what a Retry-After can make the sink wait.
const maxRetryAfter = 10 * time.Minute

func (s *httpSink) classify(err error) failure {
	var se *HTTPStatusError
	switch {
	case errors.Is(err, ErrSecret):
		return failure{kind: permanent, code: "Secret", msg: err.Error(), fix: "make the header's env variable or file readable and non-empty"}
	case errors.As(err, &se):
		code := "HTTP" + strconv.Itoa(se.Status)
		if se.retryable() {
			return failure{kind: transient, code: code, msg: err.Error(), retryAfter: se.RetryAfter}
		}
		fix := "the endpoint refuses these records: fix the backend or the sink's url, headers or format; nothing is dropped meanwhile"
		switch se.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			fix = "the endpoint refuses the credentials: fix the header read from env or file (a changed file is re-read)"
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			fix = "the endpoint does not take POSTs at this URL: fix http.url"
		case http.StatusRequestEntityTooLarge:
			fix = "the endpoint's body size limit is below the sink's batch (up to 4 MiB, 500 records): raise it"
		}
		return failure{kind: permanent, code: code, msg: err.Error(), fix: fix}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return failure{kind: transient, code: "Timeout", msg: err.Error()}
	}
	return failure{kind: transient, code: "ConnectionError", msg: err.Error()}
}

func (s *httpSink) close() {
	if c, ok := s.client.(*http.Client); ok {
		c.CloseIdleConnections()
	}
}
