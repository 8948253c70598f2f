package forwarder

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// MQTT sink limits: a batch is an in-flight window of up to 500 QoS 1
// publishes and about 1 MiB; one record may be up to 16 MiB.
const (
	mqttMaxRecords    = 500
	mqttMaxBatchBytes = 1 << 20
	mqttMaxItemBytes  = 16 << 20
)

// Topic template placeholders of an mqtt sink.
var topicPlaceholders = []string{"{topic}", "{stream}", "{key}", "{client_id}", "{shard}"}

// checkTopicTemplate refuses templates that could never give a valid
// topic name: empty, wildcards, or unknown placeholders.
func checkTopicTemplate(t string) error {
	if t == "" {
		return errors.New("must not be empty (default {topic}: the original topic)")
	}
	rest := t
	for _, p := range topicPlaceholders {
		rest = strings.ReplaceAll(rest, p, "")
	}
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		return fmt.Errorf("%q has an unknown placeholder; use %s", t, strings.Join(topicPlaceholders, " "))
	}
	if strings.ContainsAny(rest, "+#\x00") {
		return fmt.Errorf("%q: a topic name has no wildcards (+ #)", t)
	}
	return nil
}

// MQTT protocol choices of an mqtt sink (mqtt.protocol).
const (
	MQTTProtocolAuto = "auto"
	MQTTProtocol5    = "5"
	MQTTProtocol311  = "3.1.1"
)

// mqttMsg is one record as published to the remote broker.
type mqttMsg struct {
	topic string
	data  []byte
	props []shards.UserProperty // sent as MQTT 5 user properties; 3.1.1 has none
}

// packetSize is the MQTT 5 PUBLISH packet's size (an upper bound: each
// variable length counted as 4 bytes), for the remote's Maximum Packet Size.
func (m *mqttMsg) packetSize() int {
	n := 1 + 4 + 2 + len(m.topic) + 2 + 4 + len(m.data)
	for _, p := range m.props {
		n += 1 + 2 + len(p.Key) + 2 + len(p.Value)
	}
	return n
}

// mqttConn is one connection to the remote broker, MQTT 5 or 3.1.1: the
// sink's ordering, pipelining and resend logic is written once against it.
type mqttConn interface {
	// publish puts one QoS 1 PUBLISH on the wire (publishes of one
	// connection go out in call order) and returns a wait for its PUBACK.
	publish(ctx context.Context, m *mqttMsg) (wait func(context.Context) error, err error)
	// maxPacket is the remote's Maximum Packet Size (0: no limit known).
	maxPacket() int
	open() bool
	version() string
	close(quiesce time.Duration)
}

// mqttSink bridges records to a remote broker: one QoS 1 PUBLISH per
// record, the PUBACK being the delivery point. It speaks MQTT 5 (plain
// paho.golang client) when the remote offers it and falls back to 3.1.1
// (paho.mqtt.golang) when it refuses a v5 CONNECT, unless mqtt.protocol
// pins one.
//
// Order per key: a batch's publishes go out in order on one connection,
// and a key's records of one item are resent together, in order, after a
// failure, so the remote sees the first occurrences of every key in order
// (and duplicates after a lost connection). An MQTT 5 PUBACK refusing one
// record while later records of its item were already accepted is the
// exception: that record arrives after them when it is resent. Neither
// client reconnects or keeps a session on its own: a lost connection fails
// what was in flight at once, the engine backs off, and the next batch
// connects again with a clean session.
type mqttSink struct {
	cfg  Config
	log  zerolog.Logger
	tls  *tls.Config // nil: plain TCP
	id   string
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex // guards the fields below
	conn   mqttConn
	lost   error // why the last connection ended
	only3  bool  // auto: the remote refused MQTT 5 with a CONNACK
	logged string
}

func newMQTTSink(cfg Config, opts Options, log zerolog.Logger) (*mqttSink, error) {
	m := cfg.MQTT
	clientID := m.ClientID
	if clientID == "" {
		clientID = "weir-" + opts.GatewayID + "-" + cfg.Name
	}
	s := &mqttSink{cfg: cfg, log: log, id: clientID}
	if m.TLS != (MQTTTLS{}) || strings.HasPrefix(m.Broker, "ssl:") || strings.HasPrefix(m.Broker, "tls:") || strings.HasPrefix(m.Broker, "mqtts:") {
		tc, err := mqttTLS(m.TLS)
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	if m.Password.Env != "" {
		if v, ok := os.LookupEnv(m.Password.Env); !ok || v == "" {
			return nil, fmt.Errorf("%w: mqtt.password: environment variable %s is not set", ErrSecret, m.Password.Env)
		}
	}
	if m.Password.File != "" {
		if _, err := readSecretFile(m.Password.File); err != nil {
			return nil, fmt.Errorf("mqtt.password: %w", err)
		}
	}
	d := &net.Dialer{Timeout: cfg.RequestTimeout.D()}
	s.dial = d.DialContext
	return s, nil
}

func mqttTLS(t MQTTTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("forwarder: mqtt.tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("forwarder: mqtt.tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		// Read on every handshake, so a renewed certificate is used at the
		// next reconnect.
		certFile, keyFile := t.CertFile, t.KeyFile
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("forwarder: mqtt.tls.cert_file/key_file: %w", err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			return &c, err
		}
	}
	return tc, nil
}

func (s *mqttSink) limits() limits {
	return limits{maxItems: mqttMaxRecords, maxRecords: mqttMaxRecords, maxBatchBytes: mqttMaxBatchBytes,
		maxItemBytes: mqttMaxItemBytes, multi: true}
}

// encode renders the remote topic and keeps it with the payload and the
// record's user properties: a 2-byte topic length, the topic, a 4-byte
// length of the properties (each a 2-byte length and the key, a 2-byte
// length and the value), then the data.
func (s *mqttSink) encode(shard string, r *shards.Record) ([]byte, error) {
	topic := strings.NewReplacer("{topic}", r.Topic, "{stream}", s.cfg.Stream, "{key}", r.Key,
		"{client_id}", r.ClientID, "{shard}", shard).Replace(s.cfg.MQTT.Topic)
	props := 0
	for _, p := range r.Props {
		if len(p.Key) > 65535 || len(p.Value) > 65535 {
			return nil, errors.New("a user property over 65535 bytes")
		}
		props += 4 + len(p.Key) + len(p.Value)
	}
	switch {
	case topic == "":
		return nil, errors.New("the topic template gives an empty topic for this record")
	case len(topic) > 65535:
		return nil, errors.New("the topic template gives a topic over 65535 bytes")
	case strings.ContainsAny(topic, "+#\x00"):
		return nil, fmt.Errorf("the topic template gives %q, which holds a wildcard", topic)
	case len(r.Data)+len(topic)+props+6 > mqttMaxItemBytes:
		return nil, fmt.Errorf("%d bytes, an mqtt sink sends at most %d per record", len(r.Data), mqttMaxItemBytes)
	}
	b := make([]byte, 0, 6+len(topic)+props+len(r.Data))
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	b = binary.BigEndian.AppendUint32(b, uint32(props))
	for _, p := range r.Props {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Key)))
		b = append(b, p.Key...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Value)))
		b = append(b, p.Value...)
	}
	return append(b, r.Data...), nil
}

// decodeMsg reverses encode (whose output it only ever sees).
func decodeMsg(b []byte) *mqttMsg {
	n := int(binary.BigEndian.Uint16(b))
	m := &mqttMsg{topic: string(b[2 : 2+n])}
	b = b[2+n:]
	pl := int(binary.BigEndian.Uint32(b))
	props, data := b[4:4+pl], b[4+pl:]
	for len(props) > 0 {
		kl := int(binary.BigEndian.Uint16(props))
		k := string(props[2 : 2+kl])
		props = props[2+kl:]
		vl := int(binary.BigEndian.Uint16(props))
		m.props = append(m.props, shards.UserProperty{Key: k, Value: string(props[2 : 2+vl])})
		props = props[2+vl:]
	}
	m.data = data
	return m
}

func (s *mqttSink) password() (string, error) {
	pw := s.cfg.MQTT.Password
	if pw.isZero() {
		return "", nil
	}
	if pw.File != "" {
		v, err := readSecretFile(pw.File)
		if err != nil {
			return "", fmt.Errorf("mqtt.password: %w", err)
		}
		return v, nil
	}
	return os.Getenv(pw.Env), nil
}

// connected returns the live connection, connecting first if needed:
// MQTT 5 unless pinned to 3.1.1 or the remote refused it.
func (s *mqttSink) connected(ctx context.Context) (mqttConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.open() {
		return s.conn, nil
	}
	if s.conn != nil {
		go s.conn.close(0) // ended without telling connLost
		s.conn = nil
	}
	pw, err := s.password()
	if err != nil {
		return nil, err
	}
	proto := s.cfg.MQTT.Protocol
	var c mqttConn
	if proto == MQTTProtocol5 || (proto != MQTTProtocol311 && !s.only3) {
		c, err = s.connect5(ctx, pw)
		var refused *mqttV5RefusedError
		if errors.As(err, &refused) && proto != MQTTProtocol5 {
			if refused.definite {
				s.only3 = true
			}
			s.log.Info().Str("answer", refused.Error()).Msg("the remote broker does not speak MQTT 5; using MQTT 3.1.1")
			c, err = s.connect3(ctx, pw)
		}
	} else {
		c, err = s.connect3(ctx, pw)
	}
	if err != nil {
		return nil, err
	}
	if s.lost != nil {
		s.log.Info().Str("protocol", c.version()).Msg("reconnected to the remote broker")
		s.lost = nil
	} else if s.logged != c.version() {
		s.log.Info().Str("protocol", c.version()).Int("max_packet", c.maxPacket()).Msg("connected to the remote broker")
	}
	s.logged = c.version()
	s.conn = c
	return c, nil
}

// connLost is called by a client when its connection ends on its own.
func (s *mqttSink) connLost(c mqttConn, err error) {
	s.mu.Lock()
	mine := s.conn == c
	if mine {
		s.conn, s.lost = nil, err
	}
	s.mu.Unlock()
	if mine {
		s.log.Warn().Err(err).Msg("connection to the remote broker lost; unacknowledged records are resent")
	}
	go c.close(0) // releases the client's session and goroutines
}

func (s *mqttSink) send(ctx context.Context, b *batch) (sendOutcome, error) {
	c, err := s.connected(ctx)
	if err != nil {
		return sendOutcome{}, err
	}
	o := sendOutcome{res: make([]entryResult, len(b.items))}
	waits := make([][]func(context.Context) error, len(b.items))
	var firstErr error // a publish the connection could not take
	tooBig := -1
	maxPkt := c.maxPacket()
	for i, it := range b.items {
		for _, e := range it.entries {
			m := decodeMsg(e.payload)
			if maxPkt > 0 && m.packetSize() > maxPkt {
				// Later records of the key must wait behind this one.
				o.res[i], tooBig = entryFailed, m.packetSize()
				break
			}
			w, err := c.publish(ctx, m)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				o.res[i] = entryFailed
				break
			}
			waits[i] = append(waits[i], w)
		}
		if firstErr != nil {
			for j := i + 1; j < len(b.items); j++ {
				o.res[j] = entryFailed
			}
			break
		}
	}
	var refusal *MQTTReasonError // the first PUBACK refusal
	acked := 0
	for i := range waits {
		for _, w := range waits[i] {
			err := w(ctx)
			if err == nil {
				continue
			}
			var re *MQTTReasonError
			switch {
			case errors.As(err, &re):
				if refusal == nil {
					refusal = re
				}
				if o.res[i] == entryOK {
					o.res[i] = entryFailed
					if re.retryable() {
						o.res[i] = entryThrottled
					}
				}
			default:
				if firstErr == nil {
					firstErr = err
				}
				o.res[i] = entryFailed
			}
		}
		if o.res[i] == entryOK {
			acked++
		}
	}
	if firstErr != nil {
		s.drop(c)
	}
	var problem error
	switch {
	case tooBig >= 0:
		problem = fmt.Errorf("%w: a %d-byte PUBLISH, the remote broker takes at most %d", ErrMQTTPacketTooLarge, tooBig, maxPkt)
	case refusal != nil:
		problem = refusal
	case firstErr != nil:
		problem = firstErr
	}
	if problem == nil {
		return o, nil
	}
	if acked == 0 {
		return sendOutcome{}, problem
	}
	fl := s.classify(problem)
	o.lastErr = fl.code + ": " + fl.msg
	if fl.kind == permanent {
		o.perm = &fl
	}
	return o, nil
}

// drop closes a connection that failed a publish, so the next batch
// starts on a fresh one instead of behind the same stuck window.
func (s *mqttSink) drop(c mqttConn) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.mu.Unlock()
	c.close(0)
}

func (s *mqttSink) classify(err error) failure {
	var re *MQTTReasonError
	if errors.As(err, &re) {
		if re.retryable() {
			return failure{kind: transient, code: re.name(), msg: err.Error()}
		}
		return failure{kind: permanent, code: re.name(), msg: err.Error(), fix: re.fix()}
	}
	var v5 *mqttV5RefusedError
	switch {
	case errors.Is(err, ErrSecret):
		return failure{kind: permanent, code: "Secret", msg: err.Error(), fix: "make mqtt.password's env variable or file readable and non-empty"}
	case errors.Is(err, ErrMQTTPacketTooLarge):
		return failure{kind: permanent, code: "PacketTooLarge", msg: err.Error(),
			fix: "raise the remote broker's maximum packet size (mosquitto: max_packet_size) or keep records smaller"}
	case errors.As(err, &v5):
		return failure{kind: permanent, code: "UnsupportedProtocolVersion", msg: err.Error(),
			fix: "the remote broker does not speak MQTT 5: set mqtt.protocol to auto or 3.1.1"}
	case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return failure{kind: permanent, code: "NotAuthorized", msg: err.Error(),
			fix: "the remote broker refuses the login: fix mqtt.username/password, the client certificate or the broker's ACL"}
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return failure{kind: permanent, code: "IdentifierRejected", msg: err.Error(), fix: "the remote broker refuses the client id: set mqtt.client_id"}
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return failure{kind: permanent, code: "TLSVerify", msg: err.Error(), fix: "the broker's certificate is not trusted: fix mqtt.tls.ca_file or server_name"}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return failure{kind: transient, code: "Timeout", msg: err.Error()}
	}
	return failure{kind: transient, code: "ConnectionError", msg: err.Error()}
}

func (s *mqttSink) close() {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		c.close(250 * time.Millisecond)
	}
}
