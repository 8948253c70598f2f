package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/conf"
)

// PasswordChecker verifies a CONNECT's user name and password against the
// password file. Verify returns nil when they match; any error refuses
// the client (CONNACK 0x86 / 4). An error that has a method
// UnknownUser() bool returning true is counted as unknown_user, any other
// as bad_password.
type PasswordChecker interface {
	Verify(user string, password []byte) error
}

// Authorizer is the ACL. user is the client's identity ("" for an
// anonymous client), decided once at CONNECT.
type Authorizer interface {
	CanPublish(user, clientID, topic string) bool
	CanSubscribe(user, clientID, filter string) bool
	CanReceive(user, clientID, topic string) bool
}

// Values of Options.ClientIDMustMatch.
const (
	ClientIDMatchOff      = "off"
	ClientIDMatchUsername = "username"
	ClientIDMatchIdentity = "identity"
)

// ErrLoginRefused is what the auth hook hands mochi for a refused CONNECT,
// after it has sent the CONNACK itself; it ends the connection.
var ErrLoginRefused = errors.New("ingest: login refused")

// unknownUser is how a PasswordChecker's error says the user does not
// exist, without ingest depending on the package that reads the file.
type unknownUser interface{ UnknownUser() bool }

// authHook is the broker's only authentication hook. mochi ORs
// OnConnectAuthenticate and OnACLCheck across hooks (first true wins, and
// no hook at all denies everyone), so this hook must never be combined with
// mochi's auth.AllowHook or another auth hook: any of them saying yes would
// override the others.
//
// The decision is made in OnConnect, not OnConnectAuthenticate: mochi
// answers a false from the latter with 0x86, which it turns into 3.1.1
// code 5 (not authorized) where 4 (bad user name or password) is due, and
// it cannot say 0x87 or 0x85. OnConnect runs first, still under the
// listener's connect deadline, and may write the CONNACK itself; it
// records the identity on the connection, and OnConnectAuthenticate only
// reads that record.
//
// Without a password file or client certificates it follows Mosquitto
// 2.0's local-only mode: anonymous clients are accepted only on a loopback
// listener, unless the operator set allow_anonymous. New refuses to build
// a broker that would break this; the per-connection check holds it even
// if the listen host name resolved somewhere unexpected.
type authHook struct {
	mqtt.HookBase
	server         *mqtt.Server
	passwords      PasswordChecker
	acl            Authorizer
	idMustMatch    string
	allowAnonymous bool
	guard          *loginGuard
	pub            *publishHook // for refusing denied publishes as other refusals are
	stats          *counters
	log            zerolog.Logger
	lines          *connLog // login lines, rate-limited with the disconnect lines
}

var _ mqtt.PublishRefHook = (*authHook)(nil) // see publishHook's

func (h *authHook) ID() string { return "weir-auth" }

func (h *authHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck:
		return true
	case mqtt.OnPublish, mqtt.OnSubscribe, mqtt.OnSubscribed:
		return h.acl != nil
	}
	return false
}

// loginFailure is why a CONNECT was refused; it indexes counters.
type loginFailure uint8

const (
	failBadPassword loginFailure = iota
	failUnknownUser
	failNotAuthorized
	failClientIDMismatch
	failClientIDTaken
	failCertIdentity
	failThrottled
	numLoginFailures
)

var loginFailureNames = [numLoginFailures]string{
	failBadPassword:      "bad_password",
	failUnknownUser:      "unknown_user",
	failNotAuthorized:    "not_authorized",
	failClientIDMismatch: "client_id_mismatch",
	failClientIDTaken:    "client_id_taken",
	failCertIdentity:     "cert_identity",
	failThrottled:        "throttled",
}

// loginCodes are the CONNACK codes per failure: MQTT 5 first, 3.1.1 second.
var loginCodes = [numLoginFailures][2]packets.Code{
	failBadPassword:      {packets.ErrBadUsernameOrPassword, packets.ErrMalformedUsernameOrPassword},
	failUnknownUser:      {packets.ErrBadUsernameOrPassword, packets.ErrMalformedUsernameOrPassword},
	failNotAuthorized:    {packets.ErrNotAuthorized, packets.Err3NotAuthorized},
	failClientIDMismatch: {{Code: packets.ErrClientIdentifierNotValid.Code, Reason: "client identifier not valid: it must equal the client's identity"}, packets.Err3ClientIdentifierNotValid},
	failClientIDTaken:    {{Code: packets.ErrClientIdentifierNotValid.Code, Reason: "client identifier not valid: its session belongs to another identity"}, packets.Err3ClientIdentifierNotValid},
	failCertIdentity:     {{Code: packets.ErrNotAuthorized.Code, Reason: "not authorized: the client certificate has no identity"}, packets.Err3NotAuthorized},
	failThrottled:        {packets.ErrBadUsernameOrPassword, packets.ErrMalformedUsernameOrPassword},
}

// OnConnect decides who the client is, or refuses it.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	tc, ok := cl.Net.Conn.(*trackedConn)
	if !ok {
		// Not accepted by this package's listener (the inline client
		// never connects): nothing to authenticate it with.
		return ErrLoginRefused
	}
	l := tc.l
	ip := remoteIP(tc)
	at := login{cl: cl, tc: tc, ip: ip}

	// An address that has failed often waits before anything costly.
	wait, ok := h.guard.admit(ip)
	if wait > 0 {
		h.guard.sleep(tc, wait)
	}
	if !ok {
		return h.refuse(at, failThrottled, nil)
	}
	at.admitted = wait > 0

	method := "anonymous"
	var identity string
	switch tlsConn, isTLS := tc.Conn.(*tls.Conn); {
	case isTLS && l.tls != nil && l.tls.cfg.ClientCAFile != "" && peerCertified(tc, tlsConn):
		identity = certIdentity(tlsConn.ConnectionState().PeerCertificates[0], l.tls.cfg.IdentityFrom)
		if identity == "" {
			return h.refuse(at, failCertIdentity, nil)
		}
		method = "certificate"
	case h.passwords != nil && len(pk.Connect.Username) > 0:
		user := string(pk.Connect.Username)
		if err := h.passwords.Verify(user, pk.Connect.Password); err != nil {
			why := failBadPassword
			var u unknownUser
			if errors.As(err, &u) && u.UnknownUser() {
				why = failUnknownUser
			}
			return h.refuse(at, why, err)
		}
		identity, method = user, "password"
	default:
		// A user name without a password file proves nothing: the
		// client is anonymous.
		if !h.allowAnonymous && (h.passwords != nil || !isLoopbackAddr(tc.LocalAddr())) {
			return h.refuse(at, failNotAuthorized, nil)
		}
	}

	switch h.idMustMatch {
	case ClientIDMatchUsername:
		if cl.ID != string(pk.Connect.Username) {
			return h.refuse(at, failClientIDMismatch, nil)
		}
	case ClientIDMatchIdentity:
		if cl.ID != identity {
			return h.refuse(at, failClientIDMismatch, nil)
		}
	}
	// A session belongs to the identity that made it: without this an
	// anonymous client, or another device, could take over an
	// authenticated client's session (its subscriptions, its queued
	// messages) by reusing its client id. (Two CONNECTs racing for a new
	// id are not ordered here; mochi's takeover then decides.)
	if old, ok := h.server.Clients.Get(cl.ID); ok {
		if otc, ok := old.Net.Conn.(*trackedConn); ok && otc.auth.identity != identity {
			return h.refuse(at, failClientIDTaken, nil)
		}
	}
	if h.acl != nil && pk.Connect.WillFlag && !h.acl.CanPublish(identity, cl.ID, pk.Connect.WillTopic) {
		// Wills are published by mochi without OnPublish; refuse what
		// the client could not publish itself, as Mosquitto does.
		return h.refuse(at, failNotAuthorized, nil)
	}

	tc.auth.identity = identity
	tc.auth.ok = true
	tc.auth.since = time.Now()
	if e := h.lines.event(true); e != nil {
		e.Str("identity", identity).
			Str("method", method).
			Str("client_id", cl.ID).
			Str("remote", remoteString(tc)).
			Str("listener", l.id).
			Uint8("protocol", cl.Properties.ProtocolVersion).
			Bool("tls", l.tls != nil).
			Msg("mqtt login")
	}
	return nil
}

// login is one CONNECT being decided.
type login struct {
	cl       *mqtt.Client
	tc       *trackedConn
	ip       netip.Addr
	admitted bool // the guard already charged this attempt
}

// refuse counts, logs and slows a failed login, then sends the CONNACK
// the client's protocol version has for it.
func (h *authHook) refuse(at login, why loginFailure, err error) error {
	h.stats.loginFailures[why].Add(1)
	e := h.log.Warn()
	if err != nil {
		e = e.Err(err)
	}
	e.Str("reason", loginFailureNames[why]).
		Str("client_id", at.cl.ID).
		Str("username", string(at.cl.Properties.Username)).
		Str("remote", remoteString(at.tc)).
		Str("listener", at.tc.l.id).
		Uint8("protocol", at.cl.Properties.ProtocolVersion).
		Msg("mqtt login refused")
	if why != failThrottled && !at.admitted {
		h.guard.failed(at.ip)
	}
	code := loginCodes[why][1]
	if at.cl.Properties.ProtocolVersion >= 5 {
		code = loginCodes[why][0]
	}
	// A throttled or slowed refusal may have used most of the connect
	// deadline; the CONNACK gets a moment of its own.
	_ = at.tc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = at.cl.WritePacket(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connack},
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ReasonString: code.Reason},
	})
	return ErrLoginRefused
}

// peerCertified reports whether the client presented a certificate the
// listener's CA verified. The handshake is normally complete, since
// CONNECT was read through it; if not, it is finished here under the
// connect deadline already set on the socket.
func peerCertified(tc *trackedConn, c *tls.Conn) bool {
	if !c.ConnectionState().HandshakeComplete {
		ctx, cancel := context.WithTimeout(context.Background(), tc.l.connectTimeout)
		defer cancel()
		if c.HandshakeContext(ctx) != nil {
			return false
		}
	}
	// With ClientAuth VerifyClientCertIfGiven or RequireAndVerify, a
	// certificate that is present has been verified.
	return len(c.ConnectionState().PeerCertificates) > 0
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	tc, ok := cl.Net.Conn.(*trackedConn)
	return ok && tc.auth.ok
}

// OnACLCheck answers mochi's two read checks: a SUBSCRIBE filter, and
// each delivery to this client (retained messages included). mochi passes
// both as (topic, false); they are told apart by wildcards and by the
// filters of the SUBSCRIBE being processed, recorded by OnSubscribe. Write
// checks pass: publishes are checked in OnPublish, which can answer a 3.1.1
// client without the DISCONNECT packet mochi would send it.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.acl == nil || write {
		return true
	}
	tc, ok := cl.Net.Conn.(*trackedConn)
	if !ok {
		return cl.Net.Inline
	}
	id := tc.auth.identity
	isFilter := strings.ContainsAny(topic, "+#") || strings.HasPrefix(topic, "$share/")
	if isFilter || tc.auth.subscribing(topic) {
		filter := topic
		if rest, ok := strings.CutPrefix(topic, "$share/"); ok {
			// $share/group/filter: the ACL is about the filter.
			if _, f, ok := strings.Cut(rest, "/"); ok {
				filter = f
			}
		}
		// A filter without wildcards may also be a delivery racing this
		// SUBSCRIBE: then both answers must allow.
		allowed := h.acl.CanSubscribe(id, cl.ID, filter) && (isFilter || h.acl.CanReceive(id, cl.ID, topic))
		if !allowed {
			h.stats.subscribeDenied.Add(1)
		}
		return allowed
	}
	if !h.acl.CanReceive(id, cl.ID, topic) {
		h.stats.deliveryDenied.Add(1)
		return false
	}
	return true
}

// OnSubscribe records the filters OnACLCheck is about to be asked about.
func (h *authHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		filters := make([]string, len(pk.Filters))
		for i, f := range pk.Filters {
			filters[i] = f.Filter
		}
		tc.auth.pending.Store(&filters)
	}
	return pk
}

func (h *authHook) OnSubscribed(cl *mqtt.Client, _ packets.Packet, _ []byte) {
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		tc.auth.pending.Store(nil)
	}
}

// OnPublish is OnPublishRef for callers that hold the packet by value.
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	err := h.OnPublishRef(cl, &pk)
	return pk, err
}

// OnPublishRef refuses a publish the ACL denies before the ingest hook
// sees it: not stored, not retained, not delivered, answered like every
// other refusal (see publishHook.refuse). mochi's read loop calls it with
// its packet by pointer, as publishHook.OnPublishRef; pk is not changed.
func (h *authHook) OnPublishRef(cl *mqtt.Client, pk *packets.Packet) error {
	if cl.Net.Inline {
		return nil
	}
	id := ""
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		id = tc.auth.identity
	}
	if h.acl.CanPublish(id, cl.ID, pk.TopicName) {
		return nil
	}
	h.stats.received.Add(1)
	return h.pub.refuse(cl, pk, nil, refusedNotAuthorized, errPublishDenied)
}

var errPublishDenied = errors.New("ingest: the ACL does not allow this client to publish to this topic")

func remoteIP(tc *trackedConn) netip.Addr {
	if ta, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}

func remoteString(tc *trackedConn) string {
	if a := tc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// checkAnonymous enforces CheckAnonymous at start-up, with an error that
// names the listener and tells the operator what to change.
func checkAnonymous(cfg Config, hasPasswords bool) error {
	errs := CheckAnonymous(cfg, hasPasswords)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrAnonymousNotAllowed, errors.Join(conf.Prefix("mqtt", errs)...))
}

func isLoopbackAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return false
}
