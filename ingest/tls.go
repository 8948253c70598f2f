package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/weir-gateway/weir/internal/conf"
)

// Values of identity_from: which field of a verified client certificate
// is the client's identity.
const (
	IdentityFromCN     = "cn"      // Subject Common Name
	IdentityFromSANDNS = "san_dns" // first DNS Subject Alternative Name
	IdentityFromSANURI = "san_uri" // first URI Subject Alternative Name
)

// ErrTLSFiles: a certificate, key or CA file cannot be read or parsed.
var ErrTLSFiles = errors.New("ingest: TLS files unusable")

// ListenerConfig is one entry of `mqtt.listeners`.
type ListenerConfig struct {
	Listen string `yaml:"listen"`
	// TLS absent (or empty) = plain TCP.
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig is a listener's `tls:` block.
type TLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"` // "" = client certificates are not asked for
	// RequireClientCert refuses the TLS handshake of a client without a
	// certificate the CA signed; false lets such a client log in with a
	// password (or anonymously where allowed).
	RequireClientCert bool   `yaml:"require_client_cert"`
	IdentityFrom      string `yaml:"identity_from"`
}

// Enabled reports whether the listener's tls block sets anything: then
// the listener is TLS (and cert_file and key_file are required).
func (t TLSConfig) Enabled() bool { return t != TLSConfig{} }

// Defaults sets identity_from to cn when client certificates are verified.
func (l *ListenerConfig) Defaults() {
	if l.TLS.ClientCAFile != "" && l.TLS.IdentityFrom == "" {
		l.TLS.IdentityFrom = IdentityFromCN
	}
}

func cloneListeners(in []ListenerConfig) []ListenerConfig {
	if in == nil {
		return nil
	}
	return slices.Clone(in)
}

// validateListeners checks `listeners`, reading every certificate, key and
// CA file so that a typo is reported at start with its key, not at the
// first handshake.
func (c Config) validateListeners() []error {
	var errs conf.ErrorList
	seen := map[string]string{c.Listen: "listen"}
	for i, l := range c.Listeners {
		p := conf.Index("listeners", i)
		if l.Listen == "" {
			errs.Add(p+".listen", "must not be empty")
		} else if err := conf.CheckListen(l.Listen); err != nil {
			errs.AddErr(p+".listen", err)
		} else if other, dup := seen[l.Listen]; dup && !strings.HasSuffix(l.Listen, ":0") {
			// (Port 0 picks a free port each time: no clash.)
			errs.Add(p+".listen", "%s is also %s", l.Listen, other)
		} else {
			seen[l.Listen] = p + ".listen"
		}
		if l.TLS.Enabled() {
			errs.Nest(p+".tls", l.TLS.validate())
		}
	}
	return errs
}

func (t *TLSConfig) validate() []error {
	var errs conf.ErrorList
	if t.CertFile == "" {
		errs.Add("cert_file", "must be set: the server certificate (PEM)")
	}
	if t.KeyFile == "" {
		errs.Add("key_file", "must be set: the server certificate's private key (PEM)")
	}
	if t.CertFile != "" && t.KeyFile != "" {
		if _, err := loadKeyPair(t.CertFile, t.KeyFile); err != nil {
			var fe conf.FieldError
			if errors.As(err, &fe) {
				errs = append(errs, fe)
			} else {
				errs.AddErr("cert_file", err)
			}
		}
	}
	if t.ClientCAFile != "" {
		if _, err := loadCAPool(t.ClientCAFile); err != nil {
			errs.AddErr("client_ca_file", err)
		}
		errs.Enum("identity_from", t.IdentityFrom, IdentityFromCN, IdentityFromSANDNS, IdentityFromSANURI)
	} else {
		if t.RequireClientCert {
			errs.Add("require_client_cert", "needs client_ca_file: the CA that signs the client certificates")
		}
		if t.IdentityFrom != "" {
			errs.Add("identity_from", "needs client_ca_file: only a verified client certificate has an identity")
		}
	}
	return errs
}

// loadKeyPair reads a certificate and its key. Errors are FieldErrors at
// cert_file or key_file, saying which file is wrong.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, conf.Errorf("cert_file", "%v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, conf.Errorf("key_file", "%v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, conf.Errorf("cert_file", "%s with key %s: %v", certFile, keyFile, err)
	}
	return cert, nil
}

func loadCAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// tlsServer serves one listener's TLS settings. The files are re-read by
// reload; handshakes read the current *tls.Config through an atomic
// pointer, so a reload never disturbs one in progress and a bad new file
// leaves the old settings in force.
type tlsServer struct {
	cfg     TLSConfig
	current atomic.Pointer[tls.Config]
	// base is what tls.Server gets: it only points at current.
	base *tls.Config
}

func newTLSServer(cfg TLSConfig) (*tlsServer, error) {
	s := &tlsServer{cfg: cfg}
	if err := s.reload(); err != nil {
		return nil, err
	}
	s.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current.Load(), nil
		},
	}
	return s, nil
}

// reload reads the files again and, if all load, puts them in force.
func (s *tlsServer) reload() error {
	cert, err := loadKeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		var fe conf.FieldError
		if errors.As(err, &fe) {
			return fmt.Errorf("%w: %s", ErrTLSFiles, fe.Msg)
		}
		return fmt.Errorf("%w: %w", ErrTLSFiles, err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if s.cfg.ClientCAFile != "" {
		pool, err := loadCAPool(s.cfg.ClientCAFile)
		if err != nil {
			return fmt.Errorf("%w: client_ca_file: %w", ErrTLSFiles, err)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if s.cfg.RequireClientCert {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	s.current.Store(c)
	return nil
}

// certIdentity is the identity a verified client certificate carries by
// the listener's identity_from, "" when that field is empty.
func certIdentity(cert *x509.Certificate, from string) string {
	switch from {
	case IdentityFromSANDNS:
		if len(cert.DNSNames) > 0 {
			return cert.DNSNames[0]
		}
	case IdentityFromSANURI:
		if len(cert.URIs) > 0 {
			return cert.URIs[0].String()
		}
	default:
		return cert.Subject.CommonName
	}
	return ""
}

// CheckAnonymous applies the rule that keeps an unauthenticated broker off
// the network, to every listener: one that is not on loopback needs a
// password file (hasPasswords), client certificates (tls.require_client_cert)
// or allow_anonymous: true. The errors' paths are relative to `mqtt`
// (listen, listeners[1].listen); New refuses the same configurations with
// ErrAnonymousNotAllowed.
func CheckAnonymous(c Config, hasPasswords bool) []error {
	if hasPasswords || c.AllowAnonymous {
		return nil
	}
	var errs conf.ErrorList
	check := func(path, listen string, certs bool) {
		if certs || conf.CheckListen(listen) != nil || conf.IsLoopback(listen) {
			return
		}
		errs.Add(path, "%s is not loopback and clients are not authenticated on it; configure auth.password_file, "+
			"client certificates (tls.require_client_cert: true), or set mqtt.allow_anonymous: true to accept anonymous clients "+
			"from the network (as in Mosquitto 2.0, anonymous clients are accepted only on loopback unless allowed explicitly)", listen)
	}
	check("listen", c.Listen, false)
	for i, l := range c.Listeners {
		check(conf.Index("listeners", i)+".listen", l.Listen, l.TLS.RequireClientCert)
	}
	return errs
}

// addListeners builds the listeners of mqtt.listeners, loading their TLS
// files.
func (b *Broker) addListeners() error {
	for i, lc := range b.cfg.Listeners {
		id := conf.Index("listeners", i)
		l := newListener(id, lc.Listen, b.cfg.ConnectTimeout.D(), b.ctx, b.log)
		l.disconnectClients = func() { b.disconnectClients(id) }
		if lc.TLS.Enabled() {
			ts, err := newTLSServer(lc.TLS)
			if err != nil {
				return fmt.Errorf("ingest: mqtt.%s.tls: %w", id, err)
			}
			l.tls = ts
		}
		b.extra = append(b.extra, l)
	}
	return nil
}

// listeners returns every listener: mqtt.listen first, then
// mqtt.listeners in order.
func (b *Broker) listeners() []*listener {
	return append([]*listener{b.listener}, b.extra...)
}

// ListenerAddrs returns the bound address of every listener, in the order
// of listeners(): mqtt.listen, then mqtt.listeners. An entry is nil before
// Start.
func (b *Broker) ListenerAddrs() []net.Addr {
	var out []net.Addr
	for _, l := range b.listeners() {
		var a net.Addr
		if l.ln != nil {
			a = l.ln.Addr()
		}
		out = append(out, a)
	}
	return out
}

// ReloadTLS reads every TLS listener's certificate, key and CA files again
// and puts them in force for the next handshakes; connections already
// established keep theirs. A listener whose files do not all load keeps
// its old ones, and the error names it and the file. Safe to call at any
// time, from any goroutine.
func (b *Broker) ReloadTLS() error {
	var errs []error
	for _, l := range b.extra {
		if l.tls == nil {
			continue
		}
		if err := l.tls.reload(); err != nil {
			errs = append(errs, fmt.Errorf("mqtt.%s.tls: %w", l.id, err))
			continue
		}
		b.log.Info().Str("listener", l.id).Msg("mqtt TLS files reloaded")
	}
	if len(errs) > 0 {
		return fmt.Errorf("ingest: reload TLS: %w", errors.Join(errs...))
	}
	return nil
}
