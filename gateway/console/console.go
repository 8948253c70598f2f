package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/shards"
)

//go:embed static
var staticFS embed.FS

// Forwarder is what the console reads and does to one forwarder
// (*forwarder.Forwarder).
type Forwarder interface {
	Config() forwarder.Config
	Consumer() string
	Lag() forwarder.Lag
	Pause()
	Resume()
}

// Sources are the parts the console reads. Funcs may return nothing
// (the broker and the forwarders start after the API listens).
type Sources struct {
	Store *shards.Store
	// DataDir is statted for the disk's free space.
	DataDir    string
	Clients    func() []ingest.ClientInfo
	Ingest     func() ingest.Stats
	Forwarders func() []Forwarder
	// Auth is the API's credentials; nil = no logins, as without
	// api.credentials_file.
	Auth Auth
}

// Options are the console's injectable parts.
type Options struct {
	Logger zerolog.Logger
	// Secret keys the session tokens (the daemon passes the key it keeps
	// in the data directory, so sessions survive a restart); nil = random.
	Secret []byte

	// Tests: the clock, the sample interval and ring size.
	clock    func() time.Time
	interval time.Duration
	slots    int
}

// Interval and Slots are the defaults: one hour of 5 s samples.
const (
	Interval = 5 * time.Second
	Slots    = 720
)

// Console serves the web console.
type Console struct {
	src   Sources
	log   zerolog.Logger
	now   func() time.Time
	every time.Duration
	hist  *ring
	sess  *sessions
	hub   *hub
	mux   *http.ServeMux

	mu   sync.Mutex
	prev prevCounters // sampler.go
	last snapshot     // the latest overview, pushed to every browser
}

// New builds a console; Run samples, Handler serves.
func New(src Sources, opts Options) *Console {
	if opts.clock == nil {
		opts.clock = time.Now
	}
	if opts.interval <= 0 {
		opts.interval = Interval
	}
	if opts.slots <= 0 {
		opts.slots = Slots
	}
	c := &Console{src: src, log: opts.Logger, now: opts.clock, every: opts.interval, hist: newRing(opts.slots),
		sess: newSessions(opts.Secret, src.Auth, opts.clock), hub: newHub()}
	c.routes()
	return c
}

// Handler serves everything under /console/.
func (c *Console) Handler() http.Handler { return c.mux }

// Run takes a sample every interval until ctx is done.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.every)
	defer t.Stop()
	c.sample()
	for {
		select {
		case <-ctx.Done():
			c.hub.close()
			return
		case <-t.C:
			c.sample()
		}
	}
}

type permNeed uint8

const (
	needRead permNeed = iota
	needAdmin
)

// handlerFunc is a console handler that has passed the session check.
type handlerFunc func(w http.ResponseWriter, r *http.Request, g api.Grant) error

func (c *Console) routes() {
	c.mux = http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/console/", http.FileServerFS(static))
	c.mux.Handle("GET /console/", securityHeaders(files))
	c.mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	c.mux.HandleFunc("GET /console/api/session", c.serveSession)
	c.mux.HandleFunc("POST /console/api/login", c.serveLogin)
	c.mux.HandleFunc("POST /console/api/logout", c.serveLogout)
	c.mux.Handle("GET /console/api/overview", c.guard(needRead, c.serveOverview))
	c.mux.Handle("GET /console/api/history", c.guard(needRead, c.serveHistory))
	c.mux.Handle("GET /console/api/events", c.guard(needRead, c.serveEvents))
	c.mux.Handle("GET /console/api/streams", c.guard(needRead, c.serveStreams))
	c.mux.Handle("GET /console/api/devices", c.guard(needRead, c.serveDevices))
	c.mux.Handle("GET /console/api/records", c.guard(needRead, c.serveRecords))
	c.mux.Handle("GET /console/api/tail", c.guard(needRead, c.serveTail))
	c.mux.Handle("POST /console/api/actions/forwarder", c.guard(needAdmin, c.actForwarder))
	c.mux.Handle("POST /console/api/actions/checkpoint", c.guard(needAdmin, c.actCheckpoint))
	c.mux.Handle("POST /console/api/actions/split", c.guard(needAdmin, c.actSplit))
	c.mux.Handle("POST /console/api/actions/merge", c.guard(needAdmin, c.actMerge))
}

// securityHeaders keep the page from being framed or loading anything
// from elsewhere, whatever a payload shown in it contains.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// httpError is an error with the status the browser gets.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, msg string) error { return &httpError{status, msg} }

// guard checks the session, the permission and, for POSTs, the CSRF
// token, then runs h and writes its error as JSON.
func (c *Console) guard(need permNeed, h handlerFunc) http.Handler {
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, token, err := c.sess.who(r)
		switch {
		case err != nil:
			err = errorf(http.StatusUnauthorized, "log in with an API access key (api.credentials_file)")
		case r.Method == http.MethodPost && !c.sess.sameOrigin(r, token):
			err = errorf(http.StatusForbidden, "missing or wrong CSRF token, or a request from another site")
		case !g.Read:
			err = errorf(http.StatusForbidden, "access key "+g.KeyID+" lacks the read permission")
		case need == needAdmin && !g.Admin:
			err = errorf(http.StatusForbidden, "access key "+g.KeyID+" lacks the admin permission this action needs")
		default:
			err = h(w, r, g)
		}
		if err != nil {
			writeErr(w, err)
		}
	}))
}

func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeBody reads a small JSON request body (actions, login).
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		// A form post from another site cannot send application/json
		// without a preflight.
		return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad request body: "+err.Error())
	}
	return nil
}

type sessionInfo struct {
	LoginRequired bool   `json:"login_required"`
	LoggedIn      bool   `json:"logged_in"`
	KeyID         string `json:"key_id,omitempty"`
	Admin         bool   `json:"admin"`
	Read          bool   `json:"read"`
	CSRF          string `json:"csrf,omitempty"`
}

func (c *Console) serveSession(w http.ResponseWriter, r *http.Request) {
	g, token, err := c.sess.who(r)
	info := sessionInfo{LoginRequired: !c.sess.open()}
	if err == nil {
		info.LoggedIn, info.KeyID, info.Admin, info.Read, info.CSRF = true, g.KeyID, g.Admin, g.Read, c.sess.csrf(token)
	}
	writeJSON(w, http.StatusOK, info)
}

func (c *Console) serveLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		KeyID  string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if !c.sess.sameOriginNoToken(r) {
		writeErr(w, errorf(http.StatusForbidden, "login from another site refused"))
		return
	}
	if c.sess.open() {
		writeErr(w, errorf(http.StatusBadRequest, "no login needed: api.credentials_file is not set"))
		return
	}
	g, err := c.src.Auth.Login(r.Context(), r.RemoteAddr, req.KeyID, req.Secret)
	if err != nil {
		writeErr(w, errorf(http.StatusUnauthorized, "unknown access key id or wrong secret"))
		return
	}
	token, exp := c.sess.issue(g)
	c.sess.setCookie(w, r, token, exp)
	c.log.Info().Str("key", g.KeyID).Str("remote", r.RemoteAddr).Msg("console login")
	writeJSON(w, http.StatusOK, sessionInfo{LoginRequired: true, LoggedIn: true, KeyID: g.KeyID, Admin: g.Admin, Read: g.Read, CSRF: c.sess.csrf(token)})
}

func (c *Console) serveLogout(w http.ResponseWriter, r *http.Request) {
	_, token, err := c.sess.who(r)
	if err == nil && !c.sess.sameOrigin(r, token) {
		writeErr(w, errorf(http.StatusForbidden, "missing or wrong CSRF token"))
		return
	}
	if token != "" {
		c.sess.revoke(token)
	}
	c.sess.clearCookie(w, r)
	writeJSON(w, http.StatusOK, map[string]bool{"logged_out": true})
}
