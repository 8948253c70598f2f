package ingest

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weir-gateway/weir/internal/conf"
)

// Defaults and limits of the MQTT listener.
const (
	DefaultListen = "127.0.0.1:1883"
	// PacketHeadroom is added to the largest max_record_size to derive the
	// MQTT maximum packet size: room for the topic, properties and the
	// fixed header around a payload of the largest storable size.
	PacketHeadroom = 64 * conf.KiB
	// MaxMQTTPacketSize is the MQTT protocol limit (variable byte integer
	// of four bytes), 256 MiB - 1.
	MaxMQTTPacketSize conf.ByteSize = 268435455
)

// Config is the `mqtt:` section.
type Config struct {
	Listen         string        `yaml:"listen"`
	AllowAnonymous bool          `yaml:"allow_anonymous"`
	MaxPacketSize  conf.ByteSize `yaml:"max_packet_size"` // 0 = derived, see PacketSize
	ConnectTimeout conf.Duration `yaml:"connect_timeout"`
	// MaxPendingWrites bounds the outbound packet queue of one client;
	// mochi's default costs ~64 KiB per client.
	MaxPendingWrites int `yaml:"max_pending_writes"`
	ReceiveMaximum   int `yaml:"receive_maximum"`
	MaxInflight      int `yaml:"max_inflight"`

	// Transport security (see tls.go): listeners besides Listen, each
	// plain TCP or TLS.
	Listeners []ListenerConfig `yaml:"listeners"`
	// Abuse limits: what clients may make the gateway hold (limits.go).
	MaxConnections   int            `yaml:"max_connections"`
	MaxSubscriptions int            `yaml:"max_subscriptions"`
	MaxSubsTotal     int            `yaml:"max_subscriptions_total"`
	Retained         RetainedLimits `yaml:"retained"`
	MaxQoS2Pending   int            `yaml:"max_qos2_pending"`
	SessionExpiryMax conf.Duration  `yaml:"session_expiry_max"`
}

// Route is one entry of the `routes:` list: publishes whose topic matches
// Filter are stored in Stream under the key PartitionKey renders.
type Route struct {
	Filter       string `yaml:"filter"`
	Stream       string `yaml:"stream"`
	PartitionKey string `yaml:"partition_key"`
}

// Defaults fills the fields whose zero value is not a valid setting;
// max_packet_size 0 (derived) and allow_anonymous false are left alone.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = conf.Duration(10 * time.Second)
	}
	if c.MaxPendingWrites == 0 {
		c.MaxPendingWrites = 32
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = 64
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 64
	}
	if len(c.Listeners) == 0 {
		c.Listeners = nil // `listeners: []` is the default, not a change
	}
	for i := range c.Listeners {
		c.Listeners[i].Defaults()
	}
	c.limitDefaults()
}

// WithDefaults returns a copy of c with Defaults applied; the copy has
// its own Listeners.
func (c Config) WithDefaults() Config {
	c.Listeners = cloneListeners(c.Listeners)
	c.Defaults()
	return c
}

// PacketSize is the MQTT maximum packet size to enforce: MaxPacketSize if
// set, else largestRecord plus PacketHeadroom, so that any record a stream
// accepts can arrive in one PUBLISH and nothing larger costs memory.
func (c Config) PacketSize(largestRecord conf.ByteSize) conf.ByteSize {
	if c.MaxPacketSize > 0 {
		return c.MaxPacketSize
	}
	return min(largestRecord+PacketHeadroom, MaxMQTTPacketSize)
}

// Validate checks the listener settings; paths are relative to `mqtt`.
// Whether a non-loopback listen needs allow_anonymous is checked by the
// config root, which can name the keys with their full paths.
func (c Config) Validate() []error {
	var errs conf.ErrorList
	if c.Listen == "" {
		errs.Add("listen", "must not be empty")
	} else {
		errs.AddErr("listen", conf.CheckListen(c.Listen))
	}
	if c.MaxPacketSize != 0 && (c.MaxPacketSize < conf.KiB || c.MaxPacketSize > MaxMQTTPacketSize) {
		errs.Add("max_packet_size", "must be 0 (derived from max_record_size) or 1KiB..%d bytes, got %v", int64(MaxMQTTPacketSize), c.MaxPacketSize)
	}
	if c.ConnectTimeout <= 0 || c.ConnectTimeout.D() > 10*time.Minute {
		errs.Add("connect_timeout", "must be > 0 and at most 10m, got %v", c.ConnectTimeout)
	}
	if c.MaxPendingWrites < 1 || c.MaxPendingWrites > 65535 {
		errs.Add("max_pending_writes", "must be 1..65535, got %d", c.MaxPendingWrites)
	}
	if c.ReceiveMaximum < 1 || c.ReceiveMaximum > 65535 {
		errs.Add("receive_maximum", "must be 1..65535 (MQTT 5 Receive Maximum), got %d", c.ReceiveMaximum)
	}
	if c.MaxInflight < 1 || c.MaxInflight > 65535 {
		errs.Add("max_inflight", "must be 1..65535, got %d", c.MaxInflight)
	}
	errs = append(errs, c.validateListeners()...)
	errs = append(errs, c.validateLimits()...)
	return errs
}

// Defaults keys a route by client id when it names no partition key.
func (r *Route) Defaults() {
	if r.PartitionKey == "" {
		r.PartitionKey = "{client_id}"
	}
}

// WithDefaults returns a copy of r with Defaults applied.
func (r Route) WithDefaults() Route {
	r.Defaults()
	return r
}

// Validate checks the filter and the key template; whether Stream exists
// is checked by the config root, which knows the streams.
func (r Route) Validate() []error {
	var errs conf.ErrorList
	if msg := r.filterProblem(); msg != "" {
		errs.Add("filter", "%s", msg)
	}
	if r.Stream == "" {
		errs.Add("stream", "must not be empty")
	}
	if _, err := ParseKeyTemplate(r.PartitionKey); err != nil {
		var te *KeyTemplateError
		if errors.As(err, &te) {
			errs.Add("partition_key", "%s", te.Msg)
		} else {
			errs.AddErr("partition_key", err)
		}
	}
	return errs
}

// filterProblem applies the MQTT 5 rules for topic filters (4.7): '#' only
// as the whole last level, '+' only as a whole level, no NUL, at most
// 65535 bytes of UTF-8. Shared subscriptions make no sense for a route.
func (r Route) filterProblem() string {
	f := r.Filter
	switch {
	case f == "":
		return "must not be empty"
	case len(f) > 65535:
		return "is longer than 65535 bytes"
	case !utf8.ValidString(f):
		return "is not valid UTF-8"
	case strings.ContainsRune(f, 0):
		return "must not contain NUL"
	case strings.HasPrefix(f, "$share/"):
		return "shared subscription filters ($share/...) cannot be routes"
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return "'#' must be a whole level and the last one (e.g. devices/#), in " + strconv.Quote(f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return "'+' must be a whole level (e.g. devices/+/telemetry), in " + strconv.Quote(f)
		}
	}
	return ""
}
