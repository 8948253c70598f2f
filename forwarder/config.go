package forwarder

import (
	"net/url"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// Envelope formats.
const (
	EnvelopeRaw  = "raw"
	EnvelopeJSON = "json"
)

// Config is one entry of the `forwarders:` list.
type Config struct {
	Stream       string `yaml:"stream"`        // local stream
	TargetStream string `yaml:"target_stream"` // upstream stream name
	Region       string `yaml:"region"`
	Endpoint     string `yaml:"endpoint"` // "" = AWS for Region
	Profile      string `yaml:"profile"`  // "" = default credential chain
	Envelope     string `yaml:"envelope"`
	Aggregate    bool   `yaml:"aggregate"`
	// MaxBytesPerSec caps the upstream link; 0 = no cap.
	MaxBytesPerSec conf.ByteSize `yaml:"max_bytes_per_sec"`
	MaxInFlight    int           `yaml:"max_in_flight"`
	Linger         conf.Duration `yaml:"linger"`
	RequestTimeout conf.Duration `yaml:"request_timeout"`
}

// Defaults fills the fields whose zero value is not a valid setting:
// envelope raw, 4 requests in flight, 50ms linger, 10s request timeout.
func (c *Config) Defaults() {
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
}

// WithDefaults returns a copy of c with Defaults applied.
func (c Config) WithDefaults() Config {
	c.Defaults()
	return c
}

// Validate checks one forwarder on its own; paths are relative to it.
// Whether Stream exists is checked by the config root.
func (c Config) Validate() []error {
	var errs conf.ErrorList
	if c.Stream == "" {
		errs.Add("stream", "must not be empty")
	}
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
	return errs
}
