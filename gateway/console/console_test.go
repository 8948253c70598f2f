package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/shards"
)

func TestRingBounded(t *testing.T) {
	r := newRing(720)
	for i := range 2000 {
		r.add(Sample{T: int64(i)})
	}
	got := r.all()
	if len(got) != 720 || got[0].T != 2000-720 || got[719].T != 1999 {
		t.Fatalf("ring holds %d samples from %d to %d; want 720 from 1280 to 1999", len(got), got[0].T, got[len(got)-1].T)
	}
	if cap(r.buf) != 720 {
		t.Fatalf("ring grew to %d", cap(r.buf))
	}
	small := newRing(3)
	small.add(Sample{T: 1})
	if a := small.all(); len(a) != 1 || a[0].T != 1 {
		t.Fatalf("partly filled ring: %+v", a)
	}
}

func TestLoginSessionCSRF(t *testing.T) {
	e := newEnv(t, testKeys)
	b := e.browser()

	want(t, b.get("/console/api/overview"), http.StatusUnauthorized, "overview before login")
	if s := b.session(); s.body["login_required"] != true || s.body["logged_in"] != false || s.body["csrf"] != nil {
		t.Fatalf("session before login: %s", s.raw)
	}
	want(t, b.login("READER", "wrong-secret-0123456789"), http.StatusUnauthorized, "wrong secret")
	want(t, b.login("NOBODY", "reader-secret-0123456789"), http.StatusUnauthorized, "unknown key")
	want(t, b.post("/console/api/login", map[string]string{"access_key_id": "READER", "secret_access_key": "reader-secret-0123456789"},
		"Origin", "http://evil.example"), http.StatusForbidden, "login from another site")
	want(t, b.post("/console/api/login", map[string]string{"access_key_id": "READER", "secret_access_key": "reader-secret-0123456789"},
		"Content-Type", "text/plain"), http.StatusUnsupportedMediaType, "login as a form post")

	r := b.login("READER", "reader-secret-0123456789")
	want(t, r, http.StatusOK, "reader login")
	ck := r.header.Get("Set-Cookie")
	for _, attr := range []string{"weir_console=", "Path=/console/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, attr) {
			t.Fatalf("cookie %q lacks %s", ck, attr)
		}
	}
	want(t, b.get("/console/api/overview"), http.StatusOK, "overview as reader")
	r = b.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true})
	want(t, r, http.StatusForbidden, "action as reader")
	if !strings.Contains(string(r.raw), "admin") || e.fwd.held.Load() {
		t.Fatalf("reader's action: %s (held %v)", r.raw, e.fwd.held.Load())
	}

	// A key without read may log in but sees nothing.
	w := e.browser()
	want(t, w.login("WRITER", "writer-secret-0123456789"), http.StatusOK, "writer login")
	want(t, w.get("/console/api/streams"), http.StatusForbidden, "streams without read")

	a := e.browser()
	want(t, a.login("ADMIN", "admin-secret-0123456789"), http.StatusOK, "admin login")
	token := a.csrf
	a.csrf = ""
	want(t, a.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true}), http.StatusForbidden, "action without CSRF token")
	a.csrf = b.csrf // another session's token
	want(t, a.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true}), http.StatusForbidden, "action with another session's token")
	a.csrf = token
	want(t, a.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true}, "Origin", "http://evil.example"),
		http.StatusForbidden, "action from another origin")
	want(t, a.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true}, "Sec-Fetch-Site", "cross-site"),
		http.StatusForbidden, "action from another site")
	if e.fwd.held.Load() {
		t.Fatal("a refused action paused the forwarder")
	}
	want(t, a.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true}, "Origin", e.hs.URL),
		http.StatusOK, "admin action")
	if !e.fwd.held.Load() {
		t.Fatal("forwarder not paused")
	}

	// A forged or tampered cookie is refused.
	forged := e.browser()
	req, _ := http.NewRequest(http.MethodGet, e.hs.URL+"/console/api/overview", nil)
	cookie := a.hc.Jar.Cookies(req.URL)[0]
	tampered := cookie.Value[:len(cookie.Value)-2] + "AA"
	forged.hc.Jar.SetCookies(req.URL, []*http.Cookie{{Name: cookieName, Value: tampered, Path: "/console/"}})
	want(t, forged.get("/console/api/overview"), http.StatusUnauthorized, "tampered cookie")
	if _, err := e.con.sess.check(tampered); err == nil {
		t.Fatal("tampered token accepted")
	}

	// Logout revokes the token, even if the cookie is replayed.
	stolen := e.browser()
	stolen.hc.Jar.SetCookies(req.URL, []*http.Cookie{{Name: cookieName, Value: cookie.Value, Path: "/console/"}})
	want(t, stolen.get("/console/api/overview"), http.StatusOK, "replayed cookie before logout")
	want(t, a.post("/console/api/logout", map[string]any{}), http.StatusOK, "logout")
	want(t, stolen.get("/console/api/overview"), http.StatusUnauthorized, "replayed cookie after logout")

	// Sessions expire.
	want(t, b.get("/console/api/overview"), http.StatusOK, "reader still in")
	e.clock.advance(sessionTTL + time.Second)
	want(t, b.get("/console/api/overview"), http.StatusUnauthorized, "expired session")

	// A new secret or a removed key ends its sessions at the next request.
	c := e.browser()
	want(t, c.login("READER", "reader-secret-0123456789"), http.StatusOK, "login again")
	if err := os.WriteFile(e.credPath, []byte(strings.Replace(testKeys, "reader-secret-0123456789", "reader-secret-rotated-987", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.ReloadCredentials(); err != nil {
		t.Fatal(err)
	}
	want(t, c.get("/console/api/overview"), http.StatusUnauthorized, "session of a rotated secret")
	want(t, c.login("READER", "reader-secret-rotated-987"), http.StatusOK, "login with the new secret")
	want(t, c.get("/console/api/overview"), http.StatusOK, "new session")
}

func TestOpenModeStillNeedsCSRF(t *testing.T) {
	e := newEnv(t, "")
	b := e.browser()
	s := b.session()
	if s.body["login_required"] != false || s.body["admin"] != true {
		t.Fatalf("session without credentials: %s", s.raw)
	}
	want(t, b.get("/console/api/overview"), http.StatusOK, "overview")
	token := b.csrf
	b.csrf = ""
	want(t, b.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true}), http.StatusForbidden, "action without CSRF token")
	b.csrf = token
	want(t, b.post("/console/api/actions/forwarder", map[string]any{"target_stream": "upstream", "pause": true}), http.StatusOK, "action")
	want(t, b.post("/console/api/login", map[string]string{"access_key_id": "X", "secret_access_key": "y"}), http.StatusBadRequest, "login without credentials")
	// The Host check of the API applies to the console.
	want(t, b.do(http.MethodGet, "/console/api/overview", nil, "Host", "rebind.evil.example"), http.StatusForbidden, "foreign Host")
	// The page itself carries a CSP that forbids loading from elsewhere.
	r := b.get("/console/")
	want(t, r, http.StatusOK, "index")
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(string(r.raw), `src="app.js"`) {
		t.Fatalf("index: CSP %q, body %.200s", csp, r.raw)
	}
	for _, f := range []string{"app.js", "dom.js", "charts.js", "overview.js", "streams.js", "devices.js", "records.js", "actions.js", "style.css", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/LICENSE"} {
		want(t, b.get("/console/"+f), http.StatusOK, f)
	}
}

func TestOverviewHistoryAndEvents(t *testing.T) {
	e := newEnv(t, "")
	b := e.browser()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.con.sample()
	ev := e.openSSE(ctx, b.hc, "/console/api/events")
	defer ev.close()
	if name, _, ok := ev.next(); !ok || name != "overview" {
		t.Fatalf("first event %q", name)
	}
	for i := range 20 {
		if _, err := e.store.Append(context.Background(), "telemetry", &shards.Record{Key: fmt.Sprint("k", i), Data: []byte(`{"a":1}`)}, shards.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.received.Add(50)
	e.clock.advance(5 * time.Second)
	e.con.sample()
	name, data, ok := ev.next()
	if !ok || name != "overview" {
		t.Fatalf("pushed event %q", name)
	}
	var snap struct {
		Sample     Sample          `json:"sample"`
		Forwarders []forwarderView `json:"forwarders"`
		Shards     int             `json:"shards"`
	}
	if err := json.Unmarshal([]byte(data), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Sample.Msgs != 10 || snap.Sample.Records != 4 || snap.Sample.Bytes <= 0 || snap.Shards != 2 || snap.Sample.DiskUsed <= 0 ||
		len(snap.Forwarders) != 1 || snap.Forwarders[0].Phase != "running" || snap.Sample.FwdLag != 3 {
		t.Fatalf("overview: %s", data)
	}
	r := b.get("/console/api/history")
	want(t, r, http.StatusOK, "history")
	if s, _ := r.body["samples"].([]any); len(s) != 2 {
		t.Fatalf("history: %s", r.raw)
	}
	// Closing ends the stream (the gateway stopping).
	e.con.hub.close()
	if _, _, ok := ev.next(); ok {
		t.Fatal("stream still open after close")
	}
}

func TestEventSubscribersBounded(t *testing.T) {
	h := newHub()
	for range maxSubscribers {
		if _, ok := h.subscribe(); !ok {
			t.Fatal("subscribe refused below the bound")
		}
	}
	if _, ok := h.subscribe(); ok {
		t.Fatal("subscriber past the bound accepted")
	}
	h.broadcast(event{"x", nil}) // never blocks, full queues or not
	for range 10 {
		h.broadcast(event{"x", nil})
	}
	h.close()
	if h.count() != 0 {
		t.Fatal("subscribers left after close")
	}
}

func TestDevicesPaging(t *testing.T) {
	e := newEnv(t, "")
	since := time.Now().Add(-time.Hour)
	for i := range 10000 {
		e.clients = append(e.clients, ingest.ClientInfo{ID: fmt.Sprintf("dev-%05d", i), Identity: fmt.Sprintf("user%d", i%7),
			Remote: fmt.Sprintf("10.0.%d.%d:5000", i/256, i%256), Protocol: "MQTT 5", Since: since, MessagesIn: uint64(i)})
	}
	b := e.browser()
	r := b.get("/console/api/devices?page=3&size=50")
	want(t, r, http.StatusOK, "devices")
	var d struct {
		Total, Matched, Page, Size int
		Devices                    []deviceView
	}
	if err := json.Unmarshal(r.raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.Total != 10000 || d.Matched != 10000 || len(d.Devices) != 50 || d.Devices[0].ID != "dev-00150" || d.Devices[49].ID != "dev-00199" ||
		d.Devices[0].MessagesIn != 150 || d.Devices[0].Since != since.UnixMilli() {
		t.Fatalf("page 3: total %d matched %d, %d devices from %+v", d.Total, d.Matched, len(d.Devices), d.Devices[0])
	}
	r = b.get("/console/api/devices?q=DEV-0999&size=5000")
	_ = json.Unmarshal(r.raw, &d)
	if d.Matched != 10 || len(d.Devices) != 10 || d.Size != maxPageSize {
		t.Fatalf("search: matched %d, %d devices, size %d", d.Matched, len(d.Devices), d.Size)
	}
	r = b.get("/console/api/devices?q=10.0.1.4:&page=99")
	_ = json.Unmarshal(r.raw, &d)
	if d.Matched != 1 || len(d.Devices) != 0 {
		t.Fatalf("page past the end: matched %d, %d devices", d.Matched, len(d.Devices))
	}
}

func appendRec(t *testing.T, st *shards.Store, key string, data []byte) shards.Appended {
	t.Helper()
	a, err := st.Append(context.Background(), "telemetry", &shards.Record{Key: key, Data: data, Topic: "devices/" + key + "/telemetry", ClientID: key}, shards.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRecordsAndTail(t *testing.T) {
	e := newEnv(t, "")
	b := e.browser()
	cb, _ := cbor.Marshal(map[string]any{"t": 21.5, "id": "x"})
	a1 := appendRec(t, e.store, "a", []byte(`{"t":21.5}`))
	appendRec(t, e.store, "a", cb)
	appendRec(t, e.store, "b", []byte{0, 1, 2, 0xff})

	r := b.get("/console/api/records?stream=telemetry")
	want(t, r, http.StatusOK, "records")
	var got struct {
		Records []recordView
		Next    map[string]uint64
	}
	if err := json.Unmarshal(r.raw, &got); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, rec := range got.Records {
		kinds[rec.Payload.Kind] = rec.Payload.Text
	}
	if len(got.Records) != 3 || kinds["json"] != "{\n  \"t\": 21.5\n}" || !strings.Contains(kinds["cbor"], `"id": "x"`) || kinds["hex"] != "00000000  00 01 02 ff\n" {
		t.Fatalf("records: %s", r.raw)
	}
	r = b.get(fmt.Sprintf("/console/api/records?stream=telemetry&shard=%s&from=seq&seq=%d", a1.ShardID, a1.Seq+1))
	_ = json.Unmarshal(r.raw, &got)
	if len(got.Records) != 1 || got.Records[0].Payload.Kind != "cbor" {
		t.Fatalf("from seq: %s", r.raw)
	}
	want(t, b.get("/console/api/records?stream=telemetry&from=seq&seq=1"), http.StatusBadRequest, "seq without shard")
	want(t, b.get("/console/api/records?stream=nope"), http.StatusNotFound, "unknown stream")
	want(t, b.get("/console/api/records?stream=telemetry&from=time&time=1"), http.StatusOK, "from time")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tail := e.openSSE(ctx, b.hc, "/console/api/tail?stream=telemetry&from=now")
	defer tail.close()
	appendRec(t, e.store, "c", []byte(`{"live":true}`))
	name, data, ok := tail.next()
	if !ok || name != "records" || !strings.Contains(data, `\"live\": true`) {
		t.Fatalf("tail event %q: %s", name, data)
	}
}

func TestActions(t *testing.T) {
	e := newEnv(t, "")
	b := e.browser()
	b.session()
	ck := e.store.Checkpoints()
	if _, err := ck.Register("telemetry", "app"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		appendRec(t, e.store, "k", []byte("x"))
	}
	st, _ := e.store.Stream("telemetry")
	var id string
	for _, i := range st.Shards() {
		if sh, _ := st.Shard(i.ID); sh.Last() == 5 {
			id = i.ID
		}
	}
	if err := ck.Commit("telemetry", "app", id, 3); err != nil {
		t.Fatal(err)
	}
	want(t, b.post("/console/api/actions/checkpoint", map[string]string{"stream": "telemetry", "consumer": "app", "to": "latest"}), http.StatusOK, "reset to latest")
	if pos, _ := ck.Get("telemetry", "app"); pos[id] != 5 {
		t.Fatalf("after reset to latest: %v", pos)
	}
	want(t, b.post("/console/api/actions/checkpoint", map[string]string{"stream": "telemetry", "consumer": "app", "to": "trim_horizon"}), http.StatusOK, "reset to oldest")
	if pos, _ := ck.Get("telemetry", "app"); pos[id] != 0 {
		t.Fatalf("after reset to oldest: %v", pos)
	}
	want(t, b.post("/console/api/actions/checkpoint", map[string]string{"stream": "telemetry", "consumer": "forwarder:upstream", "to": "latest"}), http.StatusBadRequest, "reset a forwarder")
	want(t, b.post("/console/api/actions/checkpoint", map[string]string{"stream": "telemetry", "consumer": "app", "to": "yesterday"}), http.StatusBadRequest, "bad target")
	want(t, b.post("/console/api/actions/checkpoint", map[string]string{"stream": "telemetry", "consumer": "app", "extra": "x"}), http.StatusBadRequest, "unknown field")

	want(t, b.post("/console/api/actions/split", map[string]string{"stream": "telemetry", "shard": "shardId-000000000000"}), http.StatusOK, "split")
	open := func() []shards.ShardInfo {
		var out []shards.ShardInfo
		for _, i := range st.Shards() {
			if !i.Closed {
				out = append(out, i)
			}
		}
		return out
	}
	if o := open(); len(o) != 3 {
		t.Fatalf("after split: %d open shards", len(o))
	}
	want(t, b.post("/console/api/actions/split", map[string]string{"stream": "telemetry", "shard": "shardId-000000000000"}), http.StatusBadRequest, "split a closed shard")
	o := open()
	var left, right string
	for _, x := range o {
		for _, y := range o {
			if x.EndHash.Add1().Cmp(y.StartHash) == 0 {
				left, right = x.ID, y.ID
			}
		}
	}
	want(t, b.post("/console/api/actions/merge", map[string]string{"stream": "telemetry", "shard": left, "adjacent": right}), http.StatusOK, "merge")
	if o := open(); len(o) != 2 {
		t.Fatalf("after merge: %d open shards", len(o))
	}
	r := b.get("/console/api/streams")
	if !strings.Contains(string(r.raw), `"parent":"shardId-000000000000"`) || !strings.Contains(string(r.raw), `"name":"app"`) {
		t.Fatalf("streams after resharding: %s", r.raw)
	}
	want(t, b.post("/console/api/actions/forwarder", map[string]any{"target_stream": "nope", "pause": true}), http.StatusNotFound, "unknown forwarder")
}
