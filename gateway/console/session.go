package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-gateway/weir/gateway/api"
)

// Sessions. A browser cannot sign SigV4, so with api.credentials_file set
// the console has a login: the operator gives an access key id and its
// secret (the same ones the AWS CLI uses), the gateway checks them
// (api.Server.Login, behind the API's failure guard) and sets a session
// cookie:
//
//	weir_console = base64url("v1|<key id>|<expiry unix s>|<secret hash prefix>|<nonce>") "." base64url(HMAC-SHA256)
//
// HttpOnly (scripts cannot read it), SameSite=Strict (other sites'
// pages do not send it), Path=/console/, Secure when served over TLS. It
// holds no secret and lives sessionTTL. Every request re-reads the key's
// grant from the credentials file in force: a key removed or given a new
// secret ends its sessions at the next request, a changed permission
// applies at once. Logout revokes the token (kept until it would expire).
//
// CSRF: every POST must carry X-Weir-CSRF, an HMAC of the session token
// the page gets from GET /console/api/session (another origin cannot
// read that answer, nor set the header without a CORS preflight the
// console never grants), and an Origin, when the browser sends one, that
// is this gateway. Without credentials_file (the API is then on loopback,
// or allow_anonymous says anyone may use it) there is no login and every
// visitor has every permission, as on the API; the CSRF token is then
// an HMAC of a fixed string, so a page on another site still cannot act.

const (
	cookieName = "weir_console"
	csrfHeader = "X-Weir-Csrf"
	sessionTTL = 12 * time.Hour
	maxRevoked = 4096
)

// Auth is what the console needs of the API's credentials (*api.Server).
type Auth interface {
	CredentialsConfigured() bool
	Login(ctx context.Context, remote, keyID, secret string) (api.Grant, error)
	Lookup(keyID string) (api.Grant, bool)
}

// ErrSession is a missing, forged, expired or revoked session.
var ErrSession = errors.New("console: not logged in")

type sessions struct {
	key  []byte // HMAC key, derived from Options.Secret
	auth Auth
	now  func() time.Time

	mu      sync.Mutex
	revoked map[string]time.Time // token MAC → expiry
}

func newSessions(secret []byte, auth Auth, now func() time.Time) *sessions {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("weir console session v1"))
	return &sessions{key: m.Sum(nil), auth: auth, now: now, revoked: map[string]time.Time{}}
}

func (s *sessions) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// open reports whether logins are needed.
func (s *sessions) open() bool { return s.auth == nil || !s.auth.CredentialsConfigured() }

// issue makes a session token for a grant.
func (s *sessions) issue(g api.Grant) (token string, exp time.Time) {
	exp = s.now().Add(sessionTTL)
	nonce := make([]byte, 9)
	_, _ = rand.Read(nonce)
	payload := strings.Join([]string{"v1", g.KeyID, strconv.FormatInt(exp.Unix(), 10),
		hex.EncodeToString(g.Version[:8]), base64.RawURLEncoding.EncodeToString(nonce)}, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(s.mac("session", payload)), exp
}

// check returns the grant a token stands for now.
func (s *sessions) check(token string) (api.Grant, error) {
	p64, m64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return api.Grant{}, ErrSession
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.mac("session", string(payload))) {
		return api.Grant{}, ErrSession
	}
	f := strings.Split(string(payload), "|")
	if len(f) != 5 || f[0] != "v1" {
		return api.Grant{}, ErrSession
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || s.now().Unix() >= exp {
		return api.Grant{}, ErrSession
	}
	s.mu.Lock()
	_, gone := s.revoked[m64]
	s.mu.Unlock()
	if gone {
		return api.Grant{}, ErrSession
	}
	g, ok := s.auth.Lookup(f[1])
	if !ok || hex.EncodeToString(g.Version[:8]) != f[3] {
		return api.Grant{}, ErrSession
	}
	return g, nil
}

func (s *sessions) revoke(token string) {
	_, m64, ok := strings.Cut(token, ".")
	if !ok {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.revoked) >= maxRevoked {
		for k, exp := range s.revoked {
			if now.After(exp) || len(s.revoked) >= maxRevoked {
				delete(s.revoked, k)
			}
		}
	}
	s.revoked[m64] = now.Add(sessionTTL)
}

// csrf is the token POSTs must carry for this session ("" = anonymous).
func (s *sessions) csrf(token string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", token))
}

// fullGrant is everyone's grant without credentials_file.
var fullGrant = api.Grant{KeyID: "", Read: true, Write: true, Admin: true, AllStreams: true}

// who returns the request's grant and session token.
func (s *sessions) who(r *http.Request) (api.Grant, string, error) {
	if s.open() {
		return fullGrant, "", nil
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return api.Grant{}, "", ErrSession
	}
	g, err := s.check(c.Value)
	return g, c.Value, err
}

// sameOrigin checks a state-changing request: the CSRF header matches the
// session, and Origin (sent by every current browser on POST) is us.
func (s *sessions) sameOrigin(r *http.Request, token string) bool {
	if !s.sameOriginNoToken(r) {
		return false
	}
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf(token))) == 1
}

func (s *sessions) setCookie(w http.ResponseWriter, r *http.Request, token string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/console/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func (s *sessions) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// sameOriginNoToken is the origin half of sameOrigin, for the login
// (which has no session yet).
func (s *sessions) sameOriginNoToken(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin"
}
