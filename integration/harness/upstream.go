package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-gateway/weir/gateway/api"
)

// Forwarder is one entry of the gateway's forwarders: list, for tests that
// replay a local stream to a Kinesis-compatible endpoint (kinesalite,
// usually behind integration/faultproxy).
type Forwarder struct {
	Stream       string // local stream; default "telemetry"
	TargetStream string
	Endpoint     string // http://127.0.0.1:PORT
	Region       string // default us-east-1
	Envelope     string // raw (default) or json
	Aggregate    bool
	MaxInFlight  int           // default 4
	Linger       time.Duration // default 20ms
	// RequestTimeout defaults to 2s, short enough that a test can make
	// the upstream answer slower than it without waiting long.
	RequestTimeout time.Duration
	// Extra holds more keys of the entry, one "key: value" per line.
	Extra string
}

// ForwardersYAML renders a top-level forwarders: block for Opts.Extra.
func ForwardersYAML(fs ...Forwarder) string {
	var b strings.Builder
	b.WriteString("forwarders:\n")
	for _, f := range fs {
		if f.Stream == "" {
			f.Stream = "telemetry"
		}
		if f.Region == "" {
			f.Region = "us-east-1"
		}
		if f.Envelope == "" {
			f.Envelope = "raw"
		}
		if f.MaxInFlight == 0 {
			f.MaxInFlight = 4
		}
		if f.Linger == 0 {
			f.Linger = 20 * time.Millisecond
		}
		if f.RequestTimeout == 0 {
			f.RequestTimeout = 2 * time.Second
		}
		fmt.Fprintf(&b, "  - stream: %s\n    target_stream: %s\n    region: %s\n    endpoint: %s\n",
			f.Stream, f.TargetStream, f.Region, strconv.Quote(f.Endpoint))
		fmt.Fprintf(&b, "    envelope: %s\n    aggregate: %t\n    max_in_flight: %d\n    linger: %s\n    request_timeout: %s\n",
			f.Envelope, f.Aggregate, f.MaxInFlight, f.Linger, f.RequestTimeout)
		b.WriteString(indent(f.Extra, "    "))
	}
	return b.String()
}

// AWSTestEnv is the environment for a gateway that forwards to a local
// emulator: dummy static keys (the emulator checks no signature), no EC2
// metadata lookups (they would hang off EC2), and shared config and
// credentials files pointed into dir, where none exist, so that the
// developer's own ~/.aws never leaks into a test.
func AWSTestEnv(dir string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=AKIDWEIRTEST",
		"AWS_SECRET_ACCESS_KEY=weir-test-secret",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-aws-credentials"),
	}
}

// ForwarderState is one forwarder as the gateway reports it in
// DescribeGateway (what `weir streams --json` prints).
type ForwarderState struct {
	Stream       string  // local stream
	Consumer     string  `json:"ConsumerName"` // forwarder:<target>
	TargetStream string  `json:"TargetStream"`
	LagRecords   int64   `json:"LagRecords"`
	LagBytes     int64   `json:"LagBytes"`
	LagSeconds   float64 `json:"LagSeconds"`
	Lost         int64   `json:"RecordsLost"`
	State        string  `json:"State"`
	LastError    string  `json:"LastError"`
	Sent         int64   `json:"Sent"`
	Resent       int64   `json:"Resent"`
	// StreamRecords is how many records the local stream holds.
	StreamRecords int64
}

// describeGateway is the part of the DescribeGateway answer read here.
type describeGateway struct {
	Streams []struct {
		StreamName string `json:"StreamName"`
		Records    int64  `json:"Records"`
		Consumers  []struct {
			Kind string `json:"Kind"`
			ForwarderState
		} `json:"Consumers"`
	} `json:"Streams"`
}

// ParseForwarders extracts the forwarders from a DescribeGateway answer
// (or `weir streams --json` output).
func ParseForwarders(body []byte) ([]ForwarderState, error) {
	var d describeGateway
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("harness: DescribeGateway answer: %w: %.300s", err, body)
	}
	var out []ForwarderState
	for _, s := range d.Streams {
		for _, c := range s.Consumers {
			if c.Kind != "forwarder" {
				continue
			}
			f := c.ForwarderState
			f.Stream, f.StreamRecords = s.StreamName, s.Records
			out = append(out, f)
		}
	}
	return out, nil
}

// Forwarders asks the running gateway's API for its forwarders. It
// returns an error instead of failing the test, so that it may be polled
// (and called from any goroutine) while the gateway restarts.
func (w *Weir) Forwarders() ([]ForwarderState, error) {
	if w.APIAddr == "" {
		return nil, fmt.Errorf("harness: the gateway runs without its API")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := w.API()
	if err != nil {
		return nil, err
	}
	body, err := c.Raw(ctx, api.WeirTargetPrefix+"DescribeGateway", struct{}{})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	return ParseForwarders(body)
}

// ForwarderTo returns the forwarder whose upstream stream is target.
func (w *Weir) ForwarderTo(target string) (ForwarderState, error) {
	fs, err := w.Forwarders()
	if err != nil {
		return ForwarderState{}, err
	}
	for _, f := range fs {
		if f.TargetStream == target {
			return f, nil
		}
	}
	return ForwarderState{}, fmt.Errorf("harness: no forwarder to %s in DescribeGateway (have %d)", target, len(fs))
}

// Tap is a pass-through HTTP proxy placed between a forwarder and the
// fault proxy. It counts the requests the client gave up on (its request
// timeout fired) before the answer came: on a loaded machine even a
// healthy upstream can be slower than the timeout, and such a request may
// have been stored upstream although the forwarder saw a failure, an
// ambiguous failure no fault injected. A test that forbids duplicates
// allows exactly the entries of these requests.
type Tap struct {
	ln     net.Listener
	srv    *http.Server
	target string
	client *http.Client

	abandoned, abandonedEntries atomic.Int64
}

// StartTap starts a tap on a free loopback port in front of target
// (http://127.0.0.1:PORT); it is closed when the test ends.
func StartTap(t testing.TB, target string) *Tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Tap{ln: ln, target: strings.TrimRight(target, "/"),
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	t.Cleanup(func() {
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	return p
}

// URL is the tap's endpoint, for the forwarder.
func (p *Tap) URL() string { return "http://" + p.ln.Addr().String() }

// Abandoned returns how many requests the client gave up on and how many
// PutRecords entries (1 for PutRecord) they held.
func (p *Tap) Abandoned() (requests, entries int64) {
	return p.abandoned.Load(), p.abandonedEntries.Load()
}

type tapResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (p *Tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	entries := int64(0)
	switch op := r.Header.Get("X-Amz-Target"); {
	case strings.HasSuffix(op, ".PutRecords"):
		var in struct{ Records []json.RawMessage }
		json.Unmarshal(body, &in)
		entries = int64(len(in.Records))
	case strings.HasSuffix(op, ".PutRecord"):
		entries = 1
	}
	// The request upstream outlives the client, as it would on a real
	// network: what the upstream got, it stores.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 60*time.Second)
	req, err := http.NewRequestWithContext(ctx, r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		cancel()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Expect", "Transfer-Encoding":
			continue
		}
		req.Header[k] = vs
	}
	done := make(chan tapResult, 1)
	go func() {
		defer cancel()
		resp, err := p.client.Do(req)
		if err != nil {
			done <- tapResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- tapResult{status: resp.StatusCode, header: resp.Header, body: b, err: err}
	}()
	select {
	case <-r.Context().Done():
		p.abandoned.Add(1)
		p.abandonedEntries.Add(entries)
		return
	case res := <-done:
		if res.err != nil {
			// The fault proxy reset or refused: so does the tap.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetLinger(0)
					}
					c.Close()
				}
			}
			return
		}
		for k, vs := range res.header {
			switch http.CanonicalHeaderKey(k) {
			case "Content-Length", "Connection", "Transfer-Encoding":
				continue
			}
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(res.body)))
		w.WriteHeader(res.status)
		w.Write(res.body)
	}
}
