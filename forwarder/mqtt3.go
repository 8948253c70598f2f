package forwarder

import (
	"context"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// mqtt3Conn is an MQTT 3.1.1 connection (paho.mqtt.golang, which speaks
// no MQTT 5). With order-matters set, paho writes publishes in call order.
type mqtt3Conn struct {
	c paho3.Client
	s *mqttSink
}

func (s *mqttSink) connect3(ctx context.Context, password string) (mqttConn, error) {
	m := s.cfg.MQTT
	o := paho3.NewClientOptions().
		AddBroker(m.Broker).
		SetClientID(s.id).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetKeepAlive(m.Keepalive.D()).
		SetPingTimeout(min(m.Keepalive.D(), 10*time.Second)).
		SetConnectTimeout(s.cfg.RequestTimeout.D()).
		SetWriteTimeout(s.cfg.RequestTimeout.D())
	if m.Username != "" {
		o.SetUsername(m.Username)
		o.SetPassword(password)
	}
	if s.tls != nil {
		o.SetTLSConfig(s.tls)
	}
	conn := &mqtt3Conn{s: s}
	o.SetConnectionLostHandler(func(_ paho3.Client, err error) { s.connLost(conn, err) })
	conn.c = paho3.NewClient(o)
	tok := conn.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go func() { <-tok.Done(); conn.c.Disconnect(0) }()
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return conn, nil
}

func (c *mqtt3Conn) publish(_ context.Context, m *mqttMsg) (func(context.Context) error, error) {
	t := c.c.Publish(m.topic, 1, c.s.cfg.MQTT.Retain, m.data)
	return func(ctx context.Context) error {
		select {
		case <-t.Done():
			return t.Error()
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

func (c *mqtt3Conn) maxPacket() int              { return 0 }
func (c *mqtt3Conn) open() bool                  { return c.c.IsConnectionOpen() }
func (c *mqtt3Conn) version() string             { return MQTTProtocol311 }
func (c *mqtt3Conn) close(quiesce time.Duration) { c.c.Disconnect(uint(quiesce.Milliseconds())) }
