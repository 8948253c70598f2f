package ingest

import (
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
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test, with helpers that
// issue a server certificate for 127.0.0.1 and client certificates.
type testCA struct {
	t    testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	file string // the CA certificate, PEM
}

var certSerial atomic.Int64

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(certSerial.Add(1)),
		Subject:               pkix.Name{CommonName: "weir test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}
	ca.file = ca.write("ca.crt", ca.pem)
	return ca
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func (ca *testCA) write(name string, data []byte) string {
	ca.t.Helper()
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// issue signs a leaf certificate and returns its PEM certificate and key.
func (ca *testCA) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	ca.t.Helper()
	key := newKey(ca.t)
	tmpl.SerialNumber = big.NewInt(certSerial.Add(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder)
}

// serverFiles writes a server certificate for 127.0.0.1 named cn and
// returns the cert and key paths.
func (ca *testCA) serverFiles(name, cn string) (certFile, keyFile string) {
	certPEM, keyPEM := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return ca.write(name+".crt", certPEM), ca.write(name+".key", keyPEM)
}

// client returns a client certificate with the given CN, DNS SAN and URI
// SAN (each may be empty).
func (ca *testCA) client(cn, dns, uri string) tls.Certificate {
	ca.t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if dns != "" {
		tmpl.DNSNames = []string{dns}
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			ca.t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	certPEM, keyPEM := ca.issue(tmpl)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		ca.t.Fatal(err)
	}
	return c
}

// clientTLS trusts the CA and presents certs (none if empty).
func (ca *testCA) clientTLS(certs ...tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "127.0.0.1"}
}

// tlsListener is a mqtt.listeners entry on a free loopback port with a
// server certificate from ca.
func (ca *testCA) tlsListener(clientCA bool, require bool, from string) ListenerConfig {
	certFile, keyFile := ca.serverFiles("server", "weir test server")
	tc := TLSConfig{CertFile: certFile, KeyFile: keyFile, RequireClientCert: require, IdentityFrom: from}
	if clientCA {
		tc.ClientCAFile = ca.file
	}
	return ListenerConfig{Listen: "127.0.0.1:0", TLS: tc}
}
