package forwarder

import (
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// Envelope formats.
const (
	EnvelopeRaw  = "raw"
	EnvelopeJSON = "json"
)

// Sink kinds.
const (
	KindKinesis = "kinesis"
	KindHTTP    = "http"
	KindMQTT    = "mqtt"
	KindS3      = "s3"
)

// Config is one entry of the `forwarders:` list. The keys shared by every
// kind (stream, kind, name, priority, filter and the flow-control keys)
// are at the top; the Kinesis keys stay at the top too, so configurations
// written before there were other kinds keep working; every other kind has
// its own section (http:, mqtt:, s3:), which must be left out for other kinds.
type Config struct {
	Stream string `yaml:"stream"` // local stream
	Kind   string `yaml:"kind"`   // kinesis | http | mqtt | s3
	// Name makes the checkpoint consumer "forwarder:<name>"; for kinesis
	// it defaults to target_stream, so existing checkpoints are kept.
	Name string `yaml:"name"`
	// Priority orders the sinks on the shared uplink: higher first.
	Priority int    `yaml:"priority"`
	Filter   Filter `yaml:"filter"`

	TargetStream string `yaml:"target_stream"` // upstream stream name
	Region       string `yaml:"region"`
	Endpoint     string `yaml:"endpoint"` // "" = AWS for Region
	Profile      string `yaml:"profile"`  // "" = default credential chain
	Envelope     string `yaml:"envelope"`
	Aggregate    bool   `yaml:"aggregate"`
	// MaxBytesPerSec caps this sink's link; 0 = no cap of its own.
	MaxBytesPerSec conf.ByteSize `yaml:"max_bytes_per_sec"`
	MaxInFlight    int           `yaml:"max_in_flight"`
	Linger         conf.Duration `yaml:"linger"`
	RequestTimeout conf.Duration `yaml:"request_timeout"`

	HTTP HTTPConfig    `yaml:"http"`
	MQTT MQTTConfig    `yaml:"mqtt"`
	S3   s3sink.Config `yaml:"s3"`
}

// Defaults fills the fields whose zero value is not a valid setting:
// kind kinesis, envelope raw, 4 requests in flight, 50ms linger, 10s
// request timeout, and each section's defaults. It runs before the kind is
// known (the config decoder calls it first), so it cannot depend on it.
func (c *Config) Defaults() {
	if c.Kind == "" {
		c.Kind = KindKinesis
	}
	if c.Envelope == "" {
		c.Envelope = EnvelopeRaw
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4
	}
	if c.Linger == 0 {
		c.Linger = conf.Duration(50 * time.Millisecond)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = conf.Duration(10 * time.Second)
	}
	c.HTTP.Defaults()
	c.MQTT.Defaults()
	c.S3.Defaults()
}

// WithDefaults returns a copy of c with Defaults applied.
func (c Config) WithDefaults() Config {
	c.Defaults()
	return c
}

// SinkName is the name of the forwarder's checkpoint: name, or for
// kinesis target_stream when name is empty.
func (c Config) SinkName() string {
	if c.Name == "" && (c.Kind == KindKinesis || c.Kind == "") {
		return c.TargetStream
	}
	return c.Name
}

// Consumer is the checkpoint consumer name, "forwarder:<name>".
func (c Config) Consumer() string { return shards.ForwarderPrefix + c.SinkName() }

// Target describes where the sink delivers, for logs, `weir streams` and
// metrics; it never holds credentials (URL user info and query are cut).
func (c Config) Target() string {
	switch c.Kind {
	case KindHTTP:
		return KindHTTP + ":" + redactURL(c.HTTP.URL)
	case KindMQTT:
		return KindMQTT + ":" + redactURL(c.MQTT.Broker)
	case KindS3:
		return "s3://" + c.S3.Bucket
	}
	return c.TargetStream
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "?"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Validate checks one forwarder on its own; paths are relative to it.
// Whether Stream exists is checked by the config root.
func (c Config) Validate() []error {
	var errs conf.ErrorList
	if c.Stream == "" {
		errs.Add("stream", "must not be empty")
	}
	errs.Enum("kind", c.Kind, KindKinesis, KindHTTP, KindMQTT, KindS3)
	if c.Name != "" && !shards.ValidStreamName(c.Name) {
		errs.Add("name", "%q is not a valid name: use 1..128 characters from a-z A-Z 0-9 _ . -", c.Name)
	}
	if c.Priority < 0 || c.Priority > 100 {
		errs.Add("priority", "must be 0..100 (higher goes first on the shared uplink), got %d", c.Priority)
	}
	errs.Nest("filter", c.Filter.Validate())
	if c.Kind == KindKinesis {
		c.validateKinesis(&errs)
	} else {
		if c.Name == "" {
			errs.Add("name", "must be set for kind %s: it names the checkpoint (forwarder:<name>), e.g. name: %s-archive", c.Kind, c.Kind)
		}
		d := Config{}.WithDefaults()
		for _, k := range []struct {
			key      string
			set      bool
			onlyWith string
		}{
			{"target_stream", c.TargetStream != "", "kinesis"},
			{"region", c.Region != "", "kinesis"},
			{"endpoint", c.Endpoint != "", "kinesis"},
			{"profile", c.Profile != "", "kinesis"},
			{"envelope", c.Envelope != d.Envelope, "kinesis (http always sends the json envelope, mqtt the payload, s3 its s3.format)"},
			{"aggregate", c.Aggregate, "kinesis"},
		} {
			switch {
			case !k.set:
			case c.Kind == KindS3 && (k.key == "region" || k.key == "endpoint" || k.key == "profile"):
				errs.Add(k.key, "applies to kind %s only, this forwarder is kind s3: set s3.%s instead", k.onlyWith, k.key)
			default:
				errs.Add(k.key, "applies to kind %s only, this forwarder is kind %s", k.onlyWith, c.Kind)
			}
		}
	}
	if c.MaxBytesPerSec < 0 {
		errs.Add("max_bytes_per_sec", "must be >= 0 (0 = no cap), got %v", c.MaxBytesPerSec)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 64 {
		errs.Add("max_in_flight", "must be 1..64, got %d", c.MaxInFlight)
	}
	if c.Linger <= 0 || c.Linger.D() > 10*time.Second {
		errs.Add("linger", "must be > 0 and at most 10s (use 1ms for the lowest latency), got %v", c.Linger)
	}
	if c.RequestTimeout <= 0 || c.RequestTimeout.D() > 10*time.Minute {
		errs.Add("request_timeout", "must be > 0 and at most 10m, got %v", c.RequestTimeout)
	}
	// A section is either this forwarder's own kind, or untouched.
	sections := []struct {
		kind string
		v, d any
		val  func() []error
	}{
		{KindHTTP, c.HTTP, HTTPConfig{}.WithDefaults(), c.HTTP.Validate},
		{KindMQTT, c.MQTT, MQTTConfig{}.WithDefaults(), c.MQTT.Validate},
		{KindS3, c.S3, s3sink.Config{}.WithDefaults(), c.S3.Validate},
	}
	for _, s := range sections {
		switch {
		case s.kind == c.Kind:
			errs.Nest(s.kind, s.val())
		case !reflect.DeepEqual(s.v, s.d):
			errs.Add(s.kind, "is set, but this forwarder is kind %s: set kind: %s or remove the section", c.Kind, s.kind)
		}
	}
	return errs
}

func (c Config) validateKinesis(errs *conf.ErrorList) {
	switch {
	case c.TargetStream == "":
		errs.Add("target_stream", "must not be empty")
	case !shards.ValidStreamName(c.TargetStream):
		errs.Add("target_stream", "%q is not a valid Kinesis stream name: use 1..128 characters from a-z A-Z 0-9 _ . -", c.TargetStream)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.Add("endpoint", "%q must be an http:// or https:// URL, e.g. http://127.0.0.1:4567", c.Endpoint)
		}
	} else if c.Region == "" {
		errs.Add("region", "must be set when endpoint is empty (the endpoint is derived from the region), e.g. eu-west-1")
	}
	errs.Enum("envelope", c.Envelope, EnvelopeRaw, EnvelopeJSON)
}

// Secret is a value read at run time from an environment variable or a
// file, so that tokens and passwords never sit in the configuration.
type Secret struct {
	Env  string `yaml:"env"`  // environment variable name
	File string `yaml:"file"` // file whose content (trailing newline cut) is the value; re-read on every use, so it may be rotated
}

func (s Secret) isZero() bool { return s.Env == "" && s.File == "" }

// Validate checks that exactly one source is named.
func (s Secret) Validate() []error {
	var errs conf.ErrorList
	if s.Env != "" && s.File != "" {
		errs.Add("", "set env or file, not both")
	}
	return errs
}

// Header is one HTTP header of an http sink.
type Header struct {
	Name string `yaml:"name"`
	// Value is a literal, for what is not secret (X-Source: weir); headers
	// that carry credentials must come from env or file.
	Value string `yaml:"value"`
	Env   string `yaml:"env"`
	File  string `yaml:"file"`
}

// secretHeader reports header names that carry credentials and so may not
// be written inline.
func secretHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	for _, w := range []string{"token", "key", "secret", "password", "auth"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// HTTP body formats.
const (
	FormatJSON   = "json"
	FormatNDJSON = "ndjson"
)

// Compression of request bodies.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// HTTPConfig is the `http:` section of a forwarder of kind http.
type HTTPConfig struct {
	URL         string   `yaml:"url"`
	Format      string   `yaml:"format"`      // json (an array) | ndjson (one object a line)
	Compression string   `yaml:"compression"` // gzip | none
	Headers     []Header `yaml:"headers"`
}

// Defaults: format json, compression none.
func (h *HTTPConfig) Defaults() {
	if h.Format == "" {
		h.Format = FormatJSON
	}
	if h.Compression == "" {
		h.Compression = CompressionNone
	}
}

// WithDefaults returns a copy of h with Defaults applied.
func (h HTTPConfig) WithDefaults() HTTPConfig {
	h.Defaults()
	return h
}

// Validate checks the section; paths are relative to it.
func (h HTTPConfig) Validate() []error {
	var errs conf.ErrorList
	u, err := url.Parse(h.URL)
	switch {
	case h.URL == "":
		errs.Add("url", "must be set, e.g. https://ingest.example.com/v1/telemetry")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs.Add("url", "%q must be an http:// or https:// URL", h.URL)
	case u.User != nil:
		errs.Add("url", "must not hold credentials: put them in a header from env or file")
	}
	errs.Enum("format", h.Format, FormatJSON, FormatNDJSON)
	errs.Enum("compression", h.Compression, CompressionGzip, CompressionNone)
	seen := map[string]bool{}
	for i, hd := range h.Headers {
		p := conf.Index("headers", i)
		n := 0
		for _, s := range []string{hd.Value, hd.Env, hd.File} {
			if s != "" {
				n++
			}
		}
		switch {
		case hd.Name == "" || strings.ContainsAny(hd.Name, " :\r\n\t"):
			errs.Add(p+".name", "%q is not a header name", hd.Name)
		case seen[strings.ToLower(hd.Name)]:
			errs.Add(p+".name", "header %s is listed twice", hd.Name)
		case strings.EqualFold(hd.Name, "Content-Type") || strings.EqualFold(hd.Name, "Content-Encoding") || strings.EqualFold(hd.Name, "Content-Length"):
			errs.Add(p+".name", "%s is set by the sink from format and compression", hd.Name)
		}
		seen[strings.ToLower(hd.Name)] = true
		switch {
		case n != 1:
			errs.Add(p, "set exactly one of value, env, file")
		case hd.Value != "" && secretHeader(hd.Name):
			errs.Add(p+".value", "%s carries credentials: read it from env: or file:, never inline", hd.Name)
		case strings.ContainsAny(hd.Value, "\r\n"):
			errs.Add(p+".value", "must not contain line breaks")
		}
	}
	return errs
}

// MQTTConfig is the `mqtt:` section of a forwarder of kind mqtt (a bridge
// to another broker).
type MQTTConfig struct {
	Broker string `yaml:"broker"` // tcp://host:1883 or ssl://host:8883
	// Topic is the remote topic template; {topic} {stream} {key}
	// {client_id} {shard} are replaced.
	Topic    string  `yaml:"topic"`
	ClientID string  `yaml:"client_id"` // "" = weir-<gateway id>-<name>
	Username string  `yaml:"username"`
	Password Secret  `yaml:"password"`
	TLS      MQTTTLS `yaml:"tls"`
	Retain   bool    `yaml:"retain"`
	// Keepalive is the MQTT keep-alive interval; a dead connection is
	// noticed within 1.5 times it.
	Keepalive conf.Duration `yaml:"keepalive"`
	// Protocol is auto (MQTT 5, or 3.1.1 when the remote refuses 5), 5 or
	// 3.1.1.
	Protocol string `yaml:"protocol"`
}

// MQTTTLS is the client side of a TLS connection to the remote broker.
type MQTTTLS struct {
	CAFile   string `yaml:"ca_file"`   // "" = the system roots
	CertFile string `yaml:"cert_file"` // client certificate (AWS IoT Core style), with key_file
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string `yaml:"server_name"`
}

// Defaults: topic {topic}, keepalive 30s, protocol auto.
func (m *MQTTConfig) Defaults() {
	if m.Topic == "" {
		m.Topic = "{topic}"
	}
	if m.Keepalive == 0 {
		m.Keepalive = conf.Duration(30 * time.Second)
	}
	if m.Protocol == "" {
		m.Protocol = MQTTProtocolAuto
	}
}

// WithDefaults returns a copy of m with Defaults applied.
func (m MQTTConfig) WithDefaults() MQTTConfig {
	m.Defaults()
	return m
}

// Validate checks the section; paths are relative to it.
func (m MQTTConfig) Validate() []error {
	var errs conf.ErrorList
	u, err := url.Parse(m.Broker)
	switch {
	case m.Broker == "":
		errs.Add("broker", "must be set, e.g. ssl://xxxxxxxx-ats.iot.eu-west-1.amazonaws.com:8883")
	case err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtts"):
		errs.Add("broker", "%q must be a tcp:// or ssl:// URL with host and port", m.Broker)
	case u.Port() == "":
		errs.Add("broker", "%q needs a port (1883 for tcp, 8883 for ssl)", m.Broker)
	case u.User != nil:
		errs.Add("broker", "must not hold credentials: use username and password")
	}
	if err := checkTopicTemplate(m.Topic); err != nil {
		errs.Add("topic", "%v", err)
	}
	errs.Nest("password", m.Password.Validate())
	if !m.Password.isZero() && m.Username == "" {
		errs.Add("password", "needs username")
	}
	if (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
		errs.Add("tls", "cert_file and key_file go together")
	}
	tlsSet := m.TLS != MQTTTLS{}
	if tlsSet && err == nil && u.Scheme == "tcp" {
		errs.Add("tls", "is set, but broker %q is tcp://: use ssl://", m.Broker)
	}
	if m.Keepalive.D() < time.Second || m.Keepalive.D() > 18*time.Hour {
		errs.Add("keepalive", "must be 1s..18h, got %v", m.Keepalive)
	}
	errs.Enum("protocol", m.Protocol, MQTTProtocolAuto, MQTTProtocol5, MQTTProtocol311)
	return errs
}

// UplinkConfig is the top-level `uplink:` section: the budget all sinks
// share.
type UplinkConfig struct {
	// MaxBytesPerSec is the uplink's capacity in bytes per second, shared
	// by every forwarder by priority; 0 = no shared cap.
	MaxBytesPerSec conf.ByteSize `yaml:"max_bytes_per_sec"`
}

// Validate checks the section; paths are relative to it.
func (u UplinkConfig) Validate() []error {
	var errs conf.ErrorList
	if u.MaxBytesPerSec < 0 {
		errs.Add("max_bytes_per_sec", "must be >= 0 (0 = no shared cap), got %v", u.MaxBytesPerSec)
	}
	return errs
}
