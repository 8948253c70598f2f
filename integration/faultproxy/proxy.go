package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Faults says what to inject. Probabilities are per request (per entry
// for RecordThrottle), in [0, 1]. Only PutRecords and PutRecord requests
// get probabilistic faults; Down and NotFound hit every request.
type Faults struct {
	// Down closes every connection at once (new and kept-alive ones), as
	// an upstream that is unreachable.
	Down bool
	// NotFound answers 400 ResourceNotFoundException without forwarding.
	NotFound bool
	// RequestThrottle answers 400 ProvisionedThroughputExceededException
	// without forwarding.
	RequestThrottle float64
	// ErrorBefore answers 500 InternalFailure without forwarding.
	ErrorBefore float64
	// Reset resets the connection without forwarding.
	Reset float64
	// ErrorAfter forwards (the upstream stores the records), then answers
	// 500 InternalFailure: an ambiguous failure.
	ErrorAfter float64
	// ResetAfter forwards, then resets the connection: ambiguous.
	ResetAfter float64
	// Slow forwards, then holds the response for SlowDelay (longer than
	// the client's timeout): ambiguous.
	Slow      float64
	SlowDelay time.Duration
	// RecordThrottle fails each PutRecords entry with
	// ProvisionedThroughputExceededException with this probability; the
	// failed entries are removed from the forwarded request.
	RecordThrottle float64
	// ThrottleKey, if set, limits RecordThrottle to the entries whose
	// partition key it accepts (e.g. the keys of one hot upstream shard).
	ThrottleKey func(partitionKey string) bool
}

// Counters count requests and what was done to them.
type Counters struct {
	Requests          int64 // every request received
	PutRequests       int64 // PutRecords and PutRecord requests
	Forwarded         int64 // requests passed to the upstream
	RecordsIn         int64 // PutRecords entries received
	RecordsForwarded  int64 // entries passed to the upstream
	RecordsThrottled  int64 // entries failed with ProvisionedThroughputExceededException
	RequestsThrottled int64
	ErrorsBefore      int64
	ErrorsAfter       int64
	Resets            int64
	ResetsAfter       int64
	Slowed            int64
	NotFound          int64
	Refused           int64 // connections closed while Down
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	upstream string
	ln       net.Listener
	srv      *http.Server
	client   *http.Client

	mu     sync.Mutex
	faults Faults
	rnd    *rand.Rand

	c struct {
		requests, puts, forwarded, recIn, recFwd, recThrottled         atomic.Int64
		reqThrottled, errBefore, errAfter, resets, resetsAfter, slowed atomic.Int64
		notFound, refused                                              atomic.Int64
	}
}

// New starts a proxy on a free loopback port in front of upstream (e.g.
// kinesalite's http://127.0.0.1:PORT). seed makes the fault choices
// repeatable.
func New(upstream string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		upstream: strings.TrimRight(upstream, "/"),
		rnd:      rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		}},
	}
	p.ln = &downListener{Listener: ln, p: p}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(p.ln)
	return p, nil
}

// URL is the proxy's endpoint.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Set replaces the faults.
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Update changes the faults in place.
func (p *Proxy) Update(fn func(*Faults)) {
	p.mu.Lock()
	fn(&p.faults)
	p.mu.Unlock()
}

func (p *Proxy) current() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// roll draws one decision with probability prob. Every call draws, so
// the sequence of draws depends only on the seed and the request order.
func (p *Proxy) roll(prob float64) bool {
	p.mu.Lock()
	v := p.rnd.Float64()
	p.mu.Unlock()
	return v < prob
}

// Counters returns a snapshot of the counters.
func (p *Proxy) Counters() Counters {
	return Counters{
		Requests: p.c.requests.Load(), PutRequests: p.c.puts.Load(), Forwarded: p.c.forwarded.Load(),
		RecordsIn: p.c.recIn.Load(), RecordsForwarded: p.c.recFwd.Load(), RecordsThrottled: p.c.recThrottled.Load(),
		RequestsThrottled: p.c.reqThrottled.Load(), ErrorsBefore: p.c.errBefore.Load(), ErrorsAfter: p.c.errAfter.Load(),
		Resets: p.c.resets.Load(), ResetsAfter: p.c.resetsAfter.Load(), Slowed: p.c.slowed.Load(),
		NotFound: p.c.notFound.Load(), Refused: p.c.refused.Load(),
	}
}

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.client.CloseIdleConnections()
	return err
}

// downListener closes new connections at once while the proxy is Down.
type downListener struct {
	net.Listener
	p *Proxy
}

func (l *downListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.p.current().Down {
			return c, nil
		}
		l.p.c.refused.Add(1)
		resetConn(c)
	}
}

// resetConn closes with SO_LINGER 0, so the peer sees a reset.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *Proxy) reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faultproxy: response writer cannot hijack")
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	resetConn(c)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.c.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f := p.current()
	stream := streamName(body)
	if f.Down {
		p.c.refused.Add(1)
		p.reset(w)
		return
	}
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	if f.NotFound {
		p.c.notFound.Add(1)
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException", "Stream "+stream+" under account 000000000000 not found.")
		return
	}
	if op != "PutRecords" && op != "PutRecord" {
		p.pass(w, r, body)
		return
	}
	p.c.puts.Add(1)
	throttleReq, errBefore, reset := p.roll(f.RequestThrottle), p.roll(f.ErrorBefore), p.roll(f.Reset)
	errAfter, resetAfter, slow := p.roll(f.ErrorAfter), p.roll(f.ResetAfter), p.roll(f.Slow)
	switch {
	case throttleReq:
		p.c.reqThrottled.Add(1)
		writeError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException", "Rate exceeded for stream "+stream+" under account 000000000000.")
		return
	case errBefore:
		p.c.errBefore.Add(1)
		writeError(w, http.StatusInternalServerError, "InternalFailure", "injected before forwarding")
		return
	case reset:
		p.c.resets.Add(1)
		p.reset(w)
		return
	}
	var failed []bool // by entry index, for PutRecords
	if op == "PutRecords" {
		body, failed, err = p.cutThrottled(body, f)
		if err != nil {
			writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
			return
		}
	}
	var resp *upstreamResponse
	if failed != nil && body == nil {
		resp = &upstreamResponse{status: http.StatusOK, header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}, body: []byte(`{"FailedRecordCount":0,"Records":[]}`)}
	} else {
		resp, err = p.forward(r, body)
		if err != nil {
			writeError(w, http.StatusBadGateway, "InternalFailure", "upstream: "+err.Error())
			return
		}
	}
	switch {
	case errAfter:
		p.c.errAfter.Add(1)
		writeError(w, http.StatusInternalServerError, "InternalFailure", "injected after forwarding")
		return
	case resetAfter:
		p.c.resetsAfter.Add(1)
		p.reset(w)
		return
	case slow:
		p.c.slowed.Add(1)
		select {
		case <-time.After(f.SlowDelay):
		case <-r.Context().Done():
			return // the client gave up, as intended
		}
	}
	if failed != nil && resp.status == http.StatusOK {
		merged, err := mergeResponse(resp.body, failed, stream)
		if err != nil {
			writeError(w, http.StatusBadGateway, "InternalFailure", "merge: "+err.Error())
			return
		}
		resp.body = merged
	}
	resp.write(w)
}

// pass forwards a request untouched.
func (p *Proxy) pass(w http.ResponseWriter, r *http.Request, body []byte) {
	resp, err := p.forward(r, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, "InternalFailure", "upstream: "+err.Error())
		return
	}
	resp.write(w)
}

type upstreamResponse struct {
	status int
	header http.Header
	body   []byte
}

func (u *upstreamResponse) write(w http.ResponseWriter) {
	for k, vs := range u.header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Transfer-Encoding", "X-Amz-Crc32":
			continue
		}
		w.Header()[k] = vs
	}
	if u.header.Get("X-Amz-Crc32") != "" {
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(u.body)), 10))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(u.body)))
	w.WriteHeader(u.status)
	w.Write(u.body)
}

// forward sends the request upstream. It is not tied to the client's
// connection: an upstream that got the data stores it even if the client
// has given up, as a real one would.
func (p *Proxy) forward(r *http.Request, body []byte) (*upstreamResponse, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Expect", "Transfer-Encoding":
			continue
		}
		req.Header[k] = vs
	}
	req.ContentLength = int64(len(body))
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	p.c.forwarded.Add(1)
	return &upstreamResponse{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// putRecords is the part of a PutRecords request the proxy rewrites; other
// fields (StreamName, StreamARN) are kept as they are.
type putEntry struct {
	PartitionKey string `json:"PartitionKey"`
}

// cutThrottled picks the entries to throttle and removes them from the
// request body. failed is nil when nothing was picked (body unchanged);
// body is nil when every entry was picked (nothing to forward).
func (p *Proxy) cutThrottled(body []byte, f Faults) ([]byte, []bool, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, err
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(req["Records"], &recs); err != nil {
		return nil, nil, err
	}
	p.c.recIn.Add(int64(len(recs)))
	if f.RecordThrottle <= 0 {
		p.c.recFwd.Add(int64(len(recs)))
		return body, nil, nil
	}
	failed := make([]bool, len(recs))
	kept := make([]json.RawMessage, 0, len(recs))
	n := 0
	for i, raw := range recs {
		var e putEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, nil, err
		}
		eligible := f.ThrottleKey == nil || f.ThrottleKey(e.PartitionKey)
		if p.roll(f.RecordThrottle) && eligible {
			failed[i] = true
			n++
			continue
		}
		kept = append(kept, raw)
	}
	p.c.recThrottled.Add(int64(n))
	p.c.recFwd.Add(int64(len(kept)))
	if n == 0 {
		return body, nil, nil
	}
	if len(kept) == 0 {
		return nil, failed, nil
	}
	req["Records"], _ = json.Marshal(kept)
	out, err := json.Marshal(req)
	return out, failed, err
}

// mergeResponse puts the throttled entries back into the upstream's answer
// at their original positions.
func mergeResponse(upstream []byte, failed []bool, stream string) ([]byte, error) {
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(upstream, &resp); err != nil {
		return nil, err
	}
	var got []json.RawMessage
	if err := json.Unmarshal(resp["Records"], &got); err != nil {
		return nil, err
	}
	var upFailed int
	if raw, ok := resp["FailedRecordCount"]; ok {
		if err := json.Unmarshal(raw, &upFailed); err != nil {
			return nil, err
		}
	}
	fail, _ := json.Marshal(map[string]string{
		"ErrorCode":    "ProvisionedThroughputExceededException",
		"ErrorMessage": "Rate exceeded for shard in stream " + stream + " under account 000000000000.",
	})
	out := make([]json.RawMessage, 0, len(failed))
	j, n := 0, upFailed
	for _, f := range failed {
		if f {
			out = append(out, fail)
			n++
			continue
		}
		if j >= len(got) {
			return nil, fmt.Errorf("upstream answered %d entries for %d forwarded", len(got), j+1)
		}
		out = append(out, got[j])
		j++
	}
	resp["Records"], _ = json.Marshal(out)
	resp["FailedRecordCount"], _ = json.Marshal(n)
	return json.Marshal(resp)
}

func streamName(body []byte) string {
	var v struct{ StreamName, StreamARN string }
	json.Unmarshal(body, &v)
	if v.StreamName != "" {
		return v.StreamName
	}
	return v.StreamARN
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
