package api

import "github.com/weir-gateway/weir/internal/conf"

// DefaultListen keeps the API on loopback: it checks no credentials yet.
const DefaultListen = "127.0.0.1:4588"

// Config is the `api:` section. An empty Listen disables the API.
type Config struct {
	Listen string `yaml:"listen"`
	// AllowAnonymous must be true for a non-loopback Listen, as for MQTT:
	// the API checks no signatures yet, so exposing it is a decision the
	// operator has to write down.
	AllowAnonymous bool       `yaml:"allow_anonymous"`
	ReadLimits     ReadLimits `yaml:"read_limits"`
}

// ReadLimits are the per-shard GetRecords limits Kinesis has, shared by all
// polling readers of a shard; 0 = unlimited.
type ReadLimits struct {
	CallsPerSec int           `yaml:"calls_per_sec"`
	BytesPerSec conf.ByteSize `yaml:"bytes_per_sec"`
}

// Defaults fills an all-zero Config (one nobody set) with the defaults:
// listen on 127.0.0.1:4588 with the Kinesis read limits. A Config with any
// field set keeps an empty Listen, which means disabled.
func (c *Config) Defaults() {
	if *c == (Config{}) {
		c.Listen = DefaultListen
	}
	c.ReadLimits.Defaults()
}

// WithDefaults returns a copy of c with Defaults applied.
func (c Config) WithDefaults() Config {
	c.Defaults()
	return c
}

// Defaults applies the Kinesis limits (5 calls/s, 2 MiB/s per shard) to an
// all-zero ReadLimits; since 0 means unlimited, a partly set one is kept.
func (r *ReadLimits) Defaults() {
	if *r == (ReadLimits{}) {
		r.CallsPerSec = 5
		r.BytesPerSec = 2 * conf.MiB
	}
}

// WithDefaults returns a copy of r with Defaults applied.
func (r ReadLimits) WithDefaults() ReadLimits {
	r.Defaults()
	return r
}

// Validate checks the section; paths are relative to `api`. The loopback
// rule is checked by the config root, which names keys in full.
func (c Config) Validate() []error {
	var errs conf.ErrorList
	if c.Listen != "" {
		errs.AddErr("listen", conf.CheckListen(c.Listen))
	}
	errs.Nest("read_limits", c.ReadLimits.Validate())
	return errs
}

// Validate checks the limits; paths are relative to `read_limits`.
func (r ReadLimits) Validate() []error {
	var errs conf.ErrorList
	if r.CallsPerSec < 0 {
		errs.Add("calls_per_sec", "must be >= 0 (0 = unlimited), got %d", r.CallsPerSec)
	}
	if r.BytesPerSec < 0 {
		errs.Add("bytes_per_sec", "must be >= 0 (0 = unlimited), got %v", r.BytesPerSec)
	}
	return errs
}
