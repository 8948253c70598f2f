package auth

import (
	"strings"

	"github.com/weir-gateway/weir/internal/conf"
)

// Values of client_id_must_match.
const (
	ClientIDMatchOff      = "off"
	ClientIDMatchUsername = "username"
	ClientIDMatchIdentity = "identity"
)

// Config is the `auth:` section. Both files are optional; an empty path
// means "not configured".
type Config struct {
	PasswordFile string `yaml:"password_file"`
	ACLFile      string `yaml:"acl_file"`
	// ClientIDMustMatch refuses a client whose client id is not its user
	// name (username) or its certificate identity (identity), so that no
	// device can take over another's session.
	ClientIDMustMatch string `yaml:"client_id_must_match"`
}

// Defaults sets client_id_must_match to off when it is not given.
func (c *Config) Defaults() {
	if c.ClientIDMustMatch == "" {
		c.ClientIDMustMatch = ClientIDMatchOff
	}
}

// WithDefaults returns a copy of c with Defaults applied.
func (c Config) WithDefaults() Config {
	c.Defaults()
	return c
}

// Validate checks the section's values; paths are relative to `auth`.
// Whether the files exist and parse is checked by NewStore, which reports
// file:line.
func (c Config) Validate() []error {
	var errs conf.ErrorList
	for _, f := range []struct{ key, path string }{{"password_file", c.PasswordFile}, {"acl_file", c.ACLFile}} {
		if f.path != "" && strings.TrimSpace(f.path) != f.path {
			errs.Add(f.key, "has leading or trailing spaces: %q", f.path)
		}
	}
	errs.Enum("client_id_must_match", c.ClientIDMustMatch, ClientIDMatchOff, ClientIDMatchUsername, ClientIDMatchIdentity)
	return errs
}
