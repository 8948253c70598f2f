package harness

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"testing"
)

// TestPKIHandshake: the server certificate verifies for 127.0.0.1, a
// client certificate carries the identity fields it was made with, and a
// certificate from a foreign CA is refused by a server that trusts ours.
func TestPKIHandshake(t *testing.T) {
	p := NewPKI(t)
	kp := p.Client("dev", Identity{CN: "meter-1", DNS: []string{"meter-1.devices.local"}, URIs: []string{"spiffe://plant/meter-1"}})
	evil := NewForeignPKI(t).Client("evil", Identity{CN: "meter-1"})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, p.CAFile))
	srv := p.ServerTLS()
	srv.ClientCAs, srv.ClientAuth = pool, tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan *x509.Certificate, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				peers <- tc.ConnectionState().PeerCertificates[0]
				tc.Write([]byte("ok"))
			}
			tc.Close()
		}
	}()

	c, err := tls.Dial("tcp", ln.Addr().String(), p.ClientTLS(kp))
	if err != nil {
		t.Fatalf("mTLS with our CA: %v", err)
	}
	if b, err := io.ReadAll(c); err != nil || string(b) != "ok" {
		t.Fatalf("read %q, %v", b, err)
	}
	c.Close()
	got := <-peers
	if got.Subject.CommonName != "meter-1" || len(got.DNSNames) != 1 || got.DNSNames[0] != "meter-1.devices.local" ||
		len(got.URIs) != 1 || got.URIs[0].String() != "spiffe://plant/meter-1" {
		t.Errorf("client certificate CN %q DNS %v URIs %v", got.Subject.CommonName, got.DNSNames, got.URIs)
	}

	c, err = tls.Dial("tcp", ln.Addr().String(), p.ClientTLS(evil))
	if err == nil {
		// TLS 1.3: the server's verdict on the client arrives after the
		// client's handshake; it shows on the first read.
		_, err = io.ReadAll(c)
		c.Close()
	}
	if err == nil {
		t.Error("a client certificate from a foreign CA was accepted")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
