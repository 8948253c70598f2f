package ingest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Authenticator decides whether a connecting client may use the broker.
// It is the seam for the authentication work to come; until then
// Options.Auth is nil and the local-only rule below applies.
type Authenticator interface {
	Authenticate(clientID, username string, password []byte, remote net.Addr) bool
}

// authHook is the broker's only authentication hook. mochi ORs
// OnConnectAuthenticate and OnACLCheck across hooks (first true wins, and
// no hook at all denies everyone), so this hook must never be combined with
// mochi's auth.AllowHook or another auth hook: any of them saying yes would
// override the others.
//
// Without an Authenticator it follows Mosquitto 2.0's local-only mode:
// anonymous clients are accepted only on a loopback listener, unless the
// operator set allow_anonymous. New refuses to build a broker that would
// break this; the per-connection check below holds it even if the listen
// host name resolved somewhere unexpected.
type authHook struct {
	mqtt.HookBase
	auth           Authenticator
	allowAnonymous bool
}

func (h *authHook) ID() string { return "weir-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.auth != nil {
		var remote net.Addr
		if cl.Net.Conn != nil {
			remote = cl.Net.Conn.RemoteAddr()
		}
		return h.auth.Authenticate(cl.ID, string(pk.Connect.Username), pk.Connect.Password, remote)
	}
	if h.allowAnonymous {
		return true
	}
	return cl.Net.Conn != nil && isLoopbackAddr(cl.Net.Conn.LocalAddr())
}

// OnACLCheck allows every topic: there are no per-client permissions yet.
func (h *authHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// checkAnonymous enforces the local-only rule at start-up, with an error
// that tells the operator what to change.
func checkAnonymous(listen string, allowAnonymous bool, auth Authenticator) error {
	if auth != nil || allowAnonymous {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("ingest: mqtt.listen %q: %w", listen, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%w: mqtt.listen is %q and no authentication is configured; "+
		"listen on 127.0.0.1 or [::1], or set mqtt.allow_anonymous: true to accept "+
		"unauthenticated clients from the network", ErrAnonymousNotAllowed, listen)
}

// isLoopbackHost accepts loopback IP literals and "localhost" only; an empty
// host or 0.0.0.0 listens on every interface, and other names could resolve
// anywhere.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func isLoopbackAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return false
}
