package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
	"github.com/weir-gateway/weir/firmware-sim/internal/testbroker"
)

// pki is a CA, a server certificate for 127.0.0.1 and device certificates
// whose common name is the device's name, made for one test.
type pki struct {
	t       *testing.T
	dir     string
	caFile  string
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	pool    *x509.CertPool
	server  tls.Certificate
	certDir string
	serial  int64
}

func newPKI(t *testing.T, devices ...string) *pki {
	t.Helper()
	p := &pki{t: t, dir: t.TempDir()}
	p.caKey = p.key()
	caDER := p.sign(&x509.Certificate{Subject: pkix.Name{CommonName: "firmware-sim test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, &p.caKey.PublicKey, nil)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, p.pool = ca, x509.NewCertPool()
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.crt")
	p.write(p.caFile, "CERTIFICATE", caDER)

	sk := p.key()
	sDER := p.sign(&x509.Certificate{Subject: pkix.Name{CommonName: "broker"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, &sk.PublicKey, ca)
	p.server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sk}

	p.certDir = filepath.Join(p.dir, "certs")
	if err := os.Mkdir(p.certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range devices {
		dk := p.key()
		dDER := p.sign(&x509.Certificate{Subject: pkix.Name{CommonName: d},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, &dk.PublicKey, ca)
		keyDER, err := x509.MarshalPKCS8PrivateKey(dk)
		if err != nil {
			t.Fatal(err)
		}
		p.write(filepath.Join(p.certDir, d+".crt"), "CERTIFICATE", dDER)
		p.write(filepath.Join(p.certDir, d+".key"), "PRIVATE KEY", keyDER)
	}
	return p
}

func (p *pki) key() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return k
}

// sign issues tmpl for pub, signed by the CA (self-signed when parent is
// nil).
func (p *pki) sign(tmpl *x509.Certificate, pub *ecdsa.PublicKey, parent *x509.Certificate) []byte {
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	return der
}

func (p *pki) write(path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// mtlsBroker requires a client certificate signed by the test CA.
func (p *pki) mtlsBroker(o testbroker.Options) *testbroker.Broker {
	o.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: p.pool, MinVersion: tls.VersionTLS12}
	return testbroker.Start(p.t, o)
}

// runOK runs the simulator with a JSON summary and no progress, and
// fails the test unless it exits 0.
func runOK(t *testing.T, args ...string) fleet.Summary {
	t.Helper()
	code, out, errOut := run(t, append(args, "--summary", "json", "--progress", "0")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum fleet.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	return sum
}

var threeDevices = []string{"dev-00001", "dev-00002", "dev-00003"}

func TestPerDeviceCertificates(t *testing.T) {
	p := newPKI(t, threeDevices...)
	b := p.mtlsBroker(testbroker.Options{})
	if sum := runOK(t, "--broker", b.URL, "--cafile", p.caFile, "--cert", p.certDir,
		"--devices", "3", "--messages", "5", "--rate", "0"); sum.Acked != 15 || sum.NeverConnected != 0 {
		t.Fatalf("acked %d, never connected %d", sum.Acked, sum.NeverConnected)
	}
	for _, d := range threeDevices {
		if cn := b.PeerCN(d); cn != d {
			t.Errorf("device %s connected with the certificate of %q", d, cn)
		}
	}
}

// TestTLSFlag turns TLS on for a tcp:// URL, with one certificate for all
// devices.
func TestTLSFlag(t *testing.T) {
	p := newPKI(t, "shared")
	b := p.mtlsBroker(testbroker.Options{})
	plain := "tcp://" + strings.TrimPrefix(b.URL, "tls://")
	crt, key := filepath.Join(p.certDir, "shared.crt"), filepath.Join(p.certDir, "shared.key")
	if sum := runOK(t, "--broker", plain, "--tls", "--cafile", p.caFile, "--cert", crt, "--key", key,
		"--devices", "2", "--messages", "3", "--rate", "0"); sum.Acked != 6 {
		t.Fatalf("acked %d", sum.Acked)
	}
	if cn := b.PeerCN("dev-00002"); cn != "shared" {
		t.Errorf("dev-00002 presented %q", cn)
	}
}

func TestIdentityFlagsRefused(t *testing.T) {
	p := newPKI(t, threeDevices...)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"cafile on a plain broker", []string{"--broker", "tcp://127.0.0.1:1", "--cafile", p.caFile}, "need TLS"},
		{"a device without its certificate", []string{"--broker", "tls://127.0.0.1:1", "--cafile", p.caFile, "--cert", p.certDir, "--devices", "4"}, "dev-00004"},
		{"bad username template", []string{"--username", "{nope}"}, "username"},
		{"a CA file without certificates", []string{"--broker", "tls://127.0.0.1:1", "--cafile", filepath.Join(p.certDir, "dev-00001.key")}, "--cafile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, append(tc.args, "--messages", "1", "--progress", "0")...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %d with %q in:\n%s", code, exitUsage, tc.want, errOut)
			}
		})
	}
}

// TestUsernameTemplate: a broker that admits a device only under its own
// name and the fleet's password.
func TestUsernameTemplate(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{Authenticate: func(cl *mochi.Client, pk packets.Packet) bool {
		return string(pk.Connect.Username) == cl.ID && string(pk.Connect.Password) == "s3cret"
	}})
	if sum := runOK(t, "--broker", b.URL, "--username", "{id}", "--password", "s3cret",
		"--devices", "3", "--messages", "4", "--rate", "0"); sum.Acked != 12 || sum.NeverConnected != 0 {
		t.Fatalf("acked %d, never connected %d", sum.Acked, sum.NeverConnected)
	}
	for _, d := range threeDevices {
		if b.ConnectsOf(d) != 1 {
			t.Errorf("%s connected %d times", d, b.ConnectsOf(d))
		}
	}

	// One name for all: the broker refuses every device.
	t.Setenv("FIRMWARE_SIM_PASSWORD", "s3cret")
	if sum := runOK(t, "--broker", b.URL, "--username", "fleet",
		"--devices", "3", "--messages", "1", "--duration", "500ms", "--drain", "100ms"); sum.Acked != 0 || sum.NeverConnected != 3 {
		t.Fatalf("refused devices: acked %d, never connected %d", sum.Acked, sum.NeverConnected)
	}
}
