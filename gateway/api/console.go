package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
)

// What other handlers on the API listener (the web console) need from the
// server: a place on its mux, behind the Host check, and the access keys
// of the credentials file, so that a browser, which cannot sign SigV4,
// can log in with the same key id and secret and get the same
// permissions.

// Handle serves pattern (a net/http ServeMux pattern such as "/console/")
// on the API listener, behind the Host check. Safe while serving. The
// requests' contexts are cancelled when the server closes, so streams
// (server-sent events) end instead of holding up Close.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
}

// Grant is what one access key may do.
type Grant struct {
	KeyID string
	Read  bool
	Write bool
	Admin bool
	// AllStreams is streams: ["*"]; otherwise Streams lists them.
	AllStreams bool
	Streams    map[string]bool
	// Version changes when the key's secret does (a hash of it), so a
	// session made with an old secret can be told apart.
	Version [sha256.Size]byte
}

// MayUse reports whether the key may touch a stream at all.
func (g Grant) MayUse(stream string) bool { return g.AllStreams || g.Streams[stream] }

// ErrLogin is returned by Login for an unknown key or a wrong secret; the
// two are not told apart.
var ErrLogin = errors.New("api: unknown access key id or wrong secret")

// CredentialsConfigured reports whether api.credentials_file is in force.
func (s *Server) CredentialsConfigured() bool { return s.creds.Load() != nil }

// Login checks a key id and secret against the credentials file. A
// failure is logged and counted as an API authentication failure and,
// like a bad signature, answered late by the per-address guard (remote
// is the request's RemoteAddr), so the console's login is no faster a
// way to guess a secret than the API.
func (s *Server) Login(ctx context.Context, remote, keyID, secret string) (Grant, error) {
	cs := s.creds.Load()
	if cs == nil {
		return Grant{}, ErrLogin
	}
	c, ok := cs.keys[keyID]
	reason := reasonUnknownKey
	if ok {
		if subtle.ConstantTimeCompare([]byte("AWS4"+secret), c.secret) == 1 {
			return grantOf(c), nil
		}
		reason = reasonBadSignature
	}
	s.metrics.authFailure(reason)
	s.log.Warn().Str("key", truncate(keyID, 128)).Str("remote", remote).Str("reason", reason).Msg("console login refused")
	wait(ctx, s.closing, s.guard.delay(remote))
	return Grant{}, ErrLogin
}

// Lookup returns the current grant of a key id, false if the key is no
// longer in the credentials file (or none is configured).
func (s *Server) Lookup(keyID string) (Grant, bool) {
	cs := s.creds.Load()
	if cs == nil {
		return Grant{}, false
	}
	c, ok := cs.keys[keyID]
	if !ok {
		return Grant{}, false
	}
	return grantOf(c), true
}

func grantOf(c *credential) Grant {
	return Grant{KeyID: c.id, Read: c.perms&permRead != 0, Write: c.perms&permWrite != 0, Admin: c.perms&permAdmin != 0,
		AllStreams: c.all, Streams: c.streams, Version: sha256.Sum256(c.secret)}
}
