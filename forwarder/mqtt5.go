package forwarder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// ErrMQTTPacketTooLarge: a record does not fit the remote broker's
// Maximum Packet Size.
var ErrMQTTPacketTooLarge = errors.New("forwarder: record too large for the remote mqtt broker")

// MQTTReasonError is an MQTT 5 refusal: a PUBACK or CONNACK reason code
// of 0x80 or more.
type MQTTReasonError struct {
	Packet string // PUBACK or CONNACK
	Code   byte
	Reason string // the remote's reason string, if any
}

func (e *MQTTReasonError) Error() string {
	s := fmt.Sprintf("remote broker answered %s 0x%02x %s", e.Packet, e.Code, mqttReasonNames[e.Code])
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

var mqttReasonNames = map[byte]string{
	0x80: "unspecified error", 0x83: "implementation specific error", 0x84: "unsupported protocol version",
	0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
	0x88: "server unavailable", 0x89: "server busy", 0x8a: "banned", 0x8c: "bad authentication method",
	0x90: "topic name invalid", 0x91: "packet identifier in use", 0x95: "packet too large",
	0x97: "quota exceeded", 0x99: "payload format invalid", 0x9a: "retain not supported",
	0x9b: "QoS not supported", 0x9c: "use another server", 0x9d: "server moved", 0x9f: "connection rate exceeded",
}

// retryable: the remote is short of something now (quota, busy) or did
// not say what is wrong; the rest needs an operator.
func (e *MQTTReasonError) retryable() bool {
	switch e.Code {
	case 0x80, 0x83, 0x88, 0x89, 0x91, 0x97, 0x9f:
		return true
	}
	return false
}

func (e *MQTTReasonError) name() string {
	switch e.Code {
	case 0x87, 0x86, 0x8a, 0x8c:
		return "NotAuthorized"
	case 0x97:
		return "QuotaExceeded"
	case 0x89, 0x88:
		return "ServerBusy"
	case 0x90:
		return "TopicNameInvalid"
	case 0x99:
		return "PayloadFormatInvalid"
	case 0x95:
		return "PacketTooLarge"
	case 0x85:
		return "IdentifierRejected"
	}
	return fmt.Sprintf("Reason0x%02X", e.Code)
}

func (e *MQTTReasonError) fix() string {
	switch e.Code {
	case 0x87:
		return "the remote broker does not let this client publish to the topic: fix its ACL or mqtt.topic"
	case 0x86, 0x8a, 0x8c:
		return "the remote broker refuses the login: fix mqtt.username/password or the client certificate"
	case 0x90:
		return "the remote broker refuses the topic name: fix mqtt.topic"
	case 0x99:
		return "the remote broker refuses the payload format: check the records' content"
	case 0x85:
		return "the remote broker refuses the client id: set mqtt.client_id"
	case 0x9a:
		return "the remote broker has no retained messages: set mqtt.retain false"
	}
	return "see the remote broker's log"
}

// mqttV5RefusedError: the remote broker did not take an MQTT 5 CONNECT.
// definite means it said so (a 3.1.1 CONNACK "unacceptable protocol
// version" or MQTT 5 0x84); otherwise it closed the connection unanswered.
type mqttV5RefusedError struct {
	definite bool
	err      error
}

func (e *mqttV5RefusedError) Error() string {
	if e.definite {
		return "the remote broker refuses MQTT 5 (unacceptable protocol version)"
	}
	return "the remote broker closed the connection on an MQTT 5 CONNECT: " + e.err.Error()
}
func (e *mqttV5RefusedError) Unwrap() error { return e.err }

// sniffConn keeps the first bytes the remote sends: a 3.1.1 broker
// answers a v5 CONNECT with a CONNACK paho.golang cannot parse.
type sniffConn struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if len(c.first) < 4 {
		c.first = append(c.first, p[:min(n, 4-len(c.first))]...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *sniffConn) seen() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.first...)
}

// respSession hands the PUBACK of an asynchronous publish to the channel
// the sink set for it: paho.golang's async publish has no other way to
// report it, and its blocking one would cost a round trip per record.
type respSession struct {
	session.SessionManager
	next chan packets.ControlPacket // guarded by mqtt5Conn.mu
}

func (s *respSession) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	if p.Type() == packets.PUBLISH && s.next != nil {
		resp = s.next
	}
	return s.SessionManager.AddToSession(ctx, p, resp)
}

// mqtt5Conn is an MQTT 5 connection (the plain paho.golang client).
type mqtt5Conn struct {
	c       *paho.Client
	sess    *respSession
	retain  bool
	maxPkt  int
	timeout time.Duration

	mu sync.Mutex // orders publishes on the wire
}

func (s *mqttSink) connect5(ctx context.Context, password string) (mqttConn, error) {
	m := s.cfg.MQTT
	u, err := url.Parse(m.Broker)
	if err != nil {
		return nil, err
	}
	raw, err := s.dial(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		tc := s.tls.Clone()
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		t := tls.Client(raw, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		raw = t
	}
	sniff := &sniffConn{Conn: raw}
	conn := &mqtt5Conn{sess: &respSession{SessionManager: state.NewInMemory()}, retain: m.Retain,
		timeout: s.cfg.RequestTimeout.D()}
	conn.c = paho.NewClient(paho.ClientConfig{
		ClientID:      s.id,
		Conn:          packets.NewThreadSafeConn(sniff),
		Session:       conn.sess,
		PacketTimeout: s.cfg.RequestTimeout.D(),
		OnClientError: func(err error) { s.connLost(conn, err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			err := &MQTTReasonError{Packet: "DISCONNECT", Code: d.ReasonCode}
			if d.Properties != nil {
				err.Reason = d.Properties.ReasonString
			}
			s.connLost(conn, err)
		},
	})
	cp := &paho.Connect{ClientID: s.id, KeepAlive: uint16(m.Keepalive.D() / time.Second), CleanStart: true}
	if m.Username != "" {
		cp.Username, cp.UsernameFlag = m.Username, true
		cp.Password, cp.PasswordFlag = []byte(password), true
	}
	ca, err := conn.c.Connect(ctx, cp)
	if err != nil {
		_ = conn.sess.Close()
		first := sniff.seen()
		switch {
		case len(first) == 4 && first[0] == 0x20 && first[1] == 2 && first[3] == 1:
			return nil, &mqttV5RefusedError{definite: true, err: err}
		case ca != nil && ca.ReasonCode == 0x84:
			return nil, &mqttV5RefusedError{definite: true, err: err}
		case ca != nil && ca.ReasonCode >= 0x80:
			re := &MQTTReasonError{Packet: "CONNACK", Code: ca.ReasonCode}
			if ca.Properties != nil {
				re.Reason = ca.Properties.ReasonString
			}
			return nil, re
		case len(first) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
			return nil, &mqttV5RefusedError{err: err}
		}
		return nil, err
	}
	if ca.Properties != nil && ca.Properties.MaximumPacketSize != nil {
		conn.maxPkt = int(*ca.Properties.MaximumPacketSize)
	}
	if ca.Properties != nil && ca.Properties.RetainAvailable == false && m.Retain {
		conn.close(0)
		return nil, &MQTTReasonError{Packet: "CONNACK", Code: 0x9a, Reason: "the remote broker has no retained messages"}
	}
	return conn, nil
}

// publish hands the PUBLISH to paho.golang, which blocks while the
// remote's Receive Maximum publishes are unacknowledged.
func (c *mqtt5Conn) publish(ctx context.Context, m *mqttMsg) (func(context.Context) error, error) {
	p := &paho.Publish{QoS: 1, Retain: c.retain, Topic: m.topic, Payload: m.data}
	if len(m.props) > 0 {
		p.Properties = &paho.PublishProperties{User: make(paho.UserProperties, len(m.props))}
		for i, up := range m.props {
			p.Properties.User[i] = paho.UserProperty{Key: up.Key, Value: up.Value}
		}
	}
	ch := make(chan packets.ControlPacket, 1)
	c.mu.Lock()
	c.sess.next = ch
	_, err := c.c.PublishWithOptions(ctx, p, paho.PublishOptions{Method: paho.PublishMethod_AsyncSend})
	c.sess.next = nil
	c.mu.Unlock()
	if err != nil && !errors.Is(err, paho.ErrNetworkErrorAfterStored) {
		return nil, err
	}
	done := c.c.Done()
	return func(ctx context.Context) error {
		var resp packets.ControlPacket
		select {
		case resp = <-ch:
		case <-done:
			select {
			case resp = <-ch:
			default:
				return errors.New("connection to the remote broker lost before the PUBACK")
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		pa, ok := resp.Content.(*packets.Puback)
		if !ok {
			return errors.New("connection to the remote broker lost before the PUBACK")
		}
		if pa.ReasonCode >= 0x80 {
			re := &MQTTReasonError{Packet: "PUBACK", Code: pa.ReasonCode}
			if pa.Properties != nil {
				re.Reason = pa.Properties.ReasonString
			}
			return re
		}
		return nil
	}, nil
}

func (c *mqtt5Conn) maxPacket() int  { return c.maxPkt }
func (c *mqtt5Conn) version() string { return MQTTProtocol5 }

func (c *mqtt5Conn) open() bool {
	select {
	case <-c.c.Done():
		return false
	default:
		return true
	}
}

func (c *mqtt5Conn) close(time.Duration) {
	_ = c.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	_ = c.sess.Close()
}
