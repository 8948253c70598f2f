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

	paho "github.com/eclipse/paho.mqtt.golang"
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

// mqttSink bridges records to a remote broker: one QoS 1 PUBLISH per
// record, the PUBACK being the delivery point. MQTT 3.1.1 (paho.mqtt.golang
// speaks no MQTT 5).
//
// Order per key: a batch's publishes go out in order on one connection,
// and a key's records of one item are resent together, in order, after a
// failure, so the remote sees the first occurrences of every key in order
// (and duplicates after a lost connection). The sink does not use paho's
// automatic reconnect or session store: a lost connection fails what was
// in flight at once, the engine backs off, and the next batch connects
// again with a clean session.
type mqttSink struct {
	cfg  Config
	log  zerolog.Logger
	opts *paho.ClientOptions

	mu     sync.Mutex // guards client
	client paho.Client
	lost   error // why the last connection ended
}

func newMQTTSink(cfg Config, opts Options, log zerolog.Logger) (*mqttSink, error) {
	m := cfg.MQTT
	clientID := m.ClientID
	if clientID == "" {
		clientID = "weir-" + opts.GatewayID + "-" + cfg.Name
	}
	o := paho.NewClientOptions().
		AddBroker(m.Broker).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetKeepAlive(m.Keepalive.D()).
		SetPingTimeout(min(m.Keepalive.D(), 10*time.Second)).
		SetConnectTimeout(cfg.RequestTimeout.D()).
		SetWriteTimeout(cfg.RequestTimeout.D())
	if m.Username != "" {
		o.SetUsername(m.Username)
	}
	if m.TLS != (MQTTTLS{}) || strings.HasPrefix(m.Broker, "ssl:") || strings.HasPrefix(m.Broker, "tls:") || strings.HasPrefix(m.Broker, "mqtts:") {
		tc, err := mqttTLS(m.TLS)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	s := &mqttSink{cfg: cfg, log: log, opts: o}
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
	o.SetConnectionLostHandler(func(c paho.Client, err error) {
		s.mu.Lock()
		if s.client == c {
			s.client, s.lost = nil, err
		}
		s.mu.Unlock()
		log.Warn().Err(err).Msg("connection to the remote broker lost; unacknowledged records are resent")
	})
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

// encode renders the remote topic and keeps it with the payload:
// a 2-byte length, the topic, then the data.
func (s *mqttSink) encode(shard string, r *shards.Record) ([]byte, error) {
	topic := strings.NewReplacer("{topic}", r.Topic, "{stream}", s.cfg.Stream, "{key}", r.Key,
		"{client_id}", r.ClientID, "{shard}", shard).Replace(s.cfg.MQTT.Topic)
	switch {
	case topic == "":
		return nil, errors.New("the topic template gives an empty topic for this record")
	case len(topic) > 65535:
		return nil, errors.New("the topic template gives a topic over 65535 bytes")
	case strings.ContainsAny(topic, "+#\x00"):
		return nil, fmt.Errorf("the topic template gives %q, which holds a wildcard", topic)
	case len(r.Data)+len(topic)+2 > mqttMaxItemBytes:
		return nil, fmt.Errorf("%d bytes, an mqtt sink sends at most %d per record", len(r.Data), mqttMaxItemBytes)
	}
	b := make([]byte, 2+len(topic)+len(r.Data))
	binary.BigEndian.PutUint16(b, uint16(len(topic)))
	copy(b[2:], topic)
	copy(b[2+len(topic):], r.Data)
	return b, nil
}

func splitEncoded(b []byte) (string, []byte) {
	n := int(binary.BigEndian.Uint16(b))
	return string(b[2 : 2+n]), b[2+n:]
}

// connected returns the live client, connecting first if needed.
func (s *mqttSink) connected(ctx context.Context) (paho.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil && s.client.IsConnectionOpen() {
		return s.client, nil
	}
	if pw := s.cfg.MQTT.Password; !pw.isZero() {
		v := os.Getenv(pw.Env)
		if pw.File != "" {
			var err error
			if v, err = readSecretFile(pw.File); err != nil {
				return nil, fmt.Errorf("mqtt.password: %w", err)
			}
		}
		s.opts.SetPassword(v)
	}
	c := paho.NewClient(s.opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go func() { <-tok.Done(); c.Disconnect(0) }()
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	if s.lost != nil {
		s.log.Info().Msg("reconnected to the remote broker")
		s.lost = nil
	}
	s.client = c
	return c, nil
}

func (s *mqttSink) send(ctx context.Context, b *batch) (sendOutcome, error) {
	c, err := s.connected(ctx)
	if err != nil {
		return sendOutcome{}, err
	}
	toks := make([][]paho.Token, len(b.items))
	for i, it := range b.items {
		for _, e := range it.entries {
			topic, data := splitEncoded(e.payload)
			toks[i] = append(toks[i], c.Publish(topic, 1, s.cfg.MQTT.Retain, data))
		}
	}
	o := sendOutcome{res: make([]entryResult, len(b.items))}
	var firstErr error
	acked := 0
	for i := range toks {
		for _, t := range toks[i] {
			select {
			case <-t.Done():
				err = t.Error()
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
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
	if acked == 0 && firstErr != nil {
		s.drop(c)
		return sendOutcome{}, firstErr
	}
	if firstErr != nil {
		s.drop(c)
		o.lastErr = "ConnectionError: " + firstErr.Error()
	}
	return o, nil
}

// drop closes a connection that failed a publish, so the next batch
// starts on a fresh one instead of behind the same stuck window.
func (s *mqttSink) drop(c paho.Client) {
	s.mu.Lock()
	if s.client == c {
		s.client = nil
	}
	s.mu.Unlock()
	c.Disconnect(0)
}

func (s *mqttSink) classify(err error) failure {
	switch {
	case errors.Is(err, ErrSecret):
		return failure{kind: permanent, code: "Secret", msg: err.Error(), fix: "make mqtt.password's env variable or file readable and non-empty"}
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
	c := s.client
	s.client = nil
	s.mu.Unlock()
	if c != nil {
		c.Disconnect(250)
	}
}
