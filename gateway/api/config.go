package api

import (
	"strings"

	"github.com/weir-gateway/weir/internal/conf"
)

// DefaultListen keeps the API on loopback, where it may run without
// credentials.
const DefaultListen = "127.0.0.1:4588"

// Config is the `api:` section. An empty Listen disables the API.
type Config struct {
	Listen string `yaml:"listen"`
	// CredentialsFile lists the access keys (credentials.go). When set,
	// every request must be SigV4-signed with one of them, loopback
	// included; when empty, signatures are not checked and the API must
	// stay on loopback unless AllowAnonymous says otherwise.
	CredentialsFile string `yaml:"credentials_file"`
	// TLS serves HTTPS when both files are set.
	TLS TLSConfig `yaml:"tls"`
	// AllowedHosts are the names (besides loopback names and IP
	// literals) clients may put in the Host header; see hosts.go.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowAnonymous must be true to serve a non-loopback Listen without
	// a CredentialsFile: exposing an API anyone may call is a decision
	// the operator has to write down, as for MQTT.
	AllowAnonymous bool       `yaml:"allow_anonymous"`
	ReadLimits     ReadLimits `yaml:"read_limits"`
}

// TLSConfig is a server certificate and its key, PEM files. Both are
// re-read by Server.ReloadCredentials.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// ReadLimits are the per-shard GetRecords limits Kinesis has, shared by all
// polling readers of a shard; 0 = unlimited.
type ReadLimits struct {
	CallsPerSec int           `yaml:"calls_per_sec"`
	BytesPerSec conf.ByteSize `yaml:"bytes_per_sec"`
}

func (c *Config) isZero() bool {
	return c.Listen == "" && c.CredentialsFile == "" && c.TLS == (TLSConfig{}) && len(c.AllowedHosts) == 0 &&
		!c.AllowAnonymous && c.ReadLimits == (ReadLimits{})
}

// Defaults fills an all-zero Config (one nobody set) with the defaults:
// listen on 127.0.0.1:4588 with the Kinesis read limits. A Config with any
// field set keeps an empty Listen, which means disabled.
func (c *Config) Defaults() {
	if c.isZero() {
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
// rule is checked by the config root, which names keys in full, and again
// by New (NeedsAuthError).
func (c Config) Validate() []error {
	var errs conf.ErrorList
	if c.Listen != "" {
		errs.AddErr("listen", conf.CheckListen(c.Listen))
	}
	if c.TLS.Enabled() {
		if c.TLS.CertFile == "" {
			errs.Add("tls.cert_file", "is required with tls.key_file (the server certificate, PEM)")
		}
		if c.TLS.KeyFile == "" {
			errs.Add("tls.key_file", "is required with tls.cert_file (the certificate's private key, PEM)")
		}
	}
	if c.CredentialsFile != "" && c.AllowAnonymous {
		errs.Add("allow_anonymous", "has no effect with credentials_file: every request must then be signed with one of its keys; remove one of the two")
	}
	for i, h := range c.AllowedHosts {
		if msg := checkAllowedHost(h); msg != "" {
			errs.Add(conf.Index("allowed_hosts", i), "%q %s", h, msg)
		}
	}
	errs.Nest("read_limits", c.ReadLimits.Validate())
	return errs
}

// Exposed reports whether the section serves a non-loopback listener with
// no credentials and without allow_anonymous: the combination New refuses.
func (c Config) Exposed() bool {
	return c.Listen != "" && conf.CheckListen(c.Listen) == nil && !conf.IsLoopback(c.Listen) &&
		strings.TrimSpace(c.CredentialsFile) == "" && !c.AllowAnonymous
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
