package ingest

import (
	"slices"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// connAuth is who a connection's client is, decided once at CONNECT by
// the auth hook and kept with the connection: the ACL, the {identity} key
// placeholder and the logs all read this one value. It lives on the
// connection, not in a map keyed by client, so it goes when the
// connection goes, and a disconnected session mochi keeps (with its
// *mqtt.Client and that client's connection) keeps its owner.
//
// identity and ok are written on the connect goroutine before mochi
// registers the client (under its locks) and only read afterwards.
type connAuth struct {
	identity string    // "" = anonymous
	ok       bool      // authenticated: OnConnectAuthenticate may say yes
	since    time.Time // when the login was accepted (for the disconnect line)
	// pending holds the filters of the SUBSCRIBE being processed, for
	// OnACLCheck to tell a filter check from a delivery check.
	pending atomic.Pointer[[]string]
}

func (a *connAuth) subscribing(topic string) bool {
	p := a.pending.Load()
	return p != nil && slices.Contains(*p, topic)
}

// clientIdentity returns the identity the client logged in with, "" for
// an anonymous client or one this package did not accept.
func clientIdentity(cl *mqtt.Client) string {
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		return tc.auth.identity
	}
	return ""
}
