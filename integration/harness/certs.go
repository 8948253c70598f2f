package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throw-away certificate authority for one test: a CA, a server
// certificate for 127.0.0.1 and localhost, and client certificates made on
// demand, all written as PEM files under Dir (a t.TempDir()). Nothing is
// checked in: every run makes fresh keys. Keys are ECDSA P-256, which
// OpenSSL (mosquitto_pub), Node (MQTT.js), the AWS CLI (Python) and Go all
// accept, and which costs microseconds to generate.
type PKI struct {
	Dir string
	// CAFile is the CA certificate: mosquitto_pub --cafile, the AWS CLI's
	// --ca-bundle, mqtt.listeners[].tls.client_ca_file.
	CAFile string
	// ServerCert and ServerKey are for tls.cert_file and tls.key_file.
	ServerCert, ServerKey string

	t     testing.TB
	ca    *x509.Certificate
	caKey crypto.Signer
}

// Identity is what a client certificate says about its holder; the
// listener's identity_from picks one: cn, san_dns (the first DNS name) or
// san_uri (the first URI).
type Identity struct {
	CN   string
	DNS  []string
	URIs []string
}

// KeyPair is a certificate and its key as PEM files
// (mosquitto_pub --cert/--key, MQTT.js cert/key).
type KeyPair struct {
	CertFile, KeyFile string
}

// NewPKI makes a CA named "weir test CA" and a server certificate signed
// by it, valid for IP 127.0.0.1 and DNS localhost.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	return newPKI(t, "weir test CA")
}

// NewForeignPKI is a second, unrelated CA: its client certificates must
// be refused by a listener that trusts only the first.
func NewForeignPKI(t testing.TB) *PKI {
	t.Helper()
	return newPKI(t, "some other CA")
}

func newPKI(t testing.TB, name string) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), t: t}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"weir tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("harness: make CA: %v", err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caKey = key
	p.CAFile = filepath.Join(p.Dir, "ca.crt")
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	srv := p.issue("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.ServerCert, p.ServerKey = srv.CertFile, srv.KeyFile
	return p
}

// Client issues a client certificate for id, written as NAME.crt and
// NAME.key.
func (p *PKI) Client(name string, id Identity) KeyPair {
	p.t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: id.CN},
		DNSNames:    id.DNS,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, s := range id.URIs {
		u, err := url.Parse(s)
		if err != nil {
			p.t.Fatalf("harness: client certificate URI %q: %v", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	return p.issue(name, tmpl)
}

// ServerTLS is a server-side config holding the server certificate.
func (p *PKI) ServerTLS() *tls.Config {
	p.t.Helper()
	c, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		p.t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}}
}

// ClientTLS is what a Go device (paho) uses to reach a listener with the
// server certificate: it trusts the CA and, if kp is given, presents that
// client certificate.
func (p *PKI) ClientTLS(kp ...KeyPair) *tls.Config {
	p.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	for _, k := range kp {
		cert, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
		if err != nil {
			p.t.Fatal(err)
		}
		c.Certificates = append(c.Certificates, cert)
	}
	return c
}

func (p *PKI) issue(name string, tmpl *x509.Certificate) KeyPair {
	p.t.Helper()
	key := newKey(p.t)
	tmpl.SerialNumber = serial(p.t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		p.t.Fatalf("harness: issue %s: %v", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	kp := KeyPair{CertFile: filepath.Join(p.Dir, name+".crt"), KeyFile: filepath.Join(p.Dir, name+".key")}
	writePEM(p.t, kp.CertFile, "CERTIFICATE", der)
	writePEM(p.t, kp.KeyFile, "PRIVATE KEY", kder)
	return kp
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
