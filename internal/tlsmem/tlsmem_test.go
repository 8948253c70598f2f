package tlsmem

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

func TestLayoutKnown(t *testing.T) {
	if !Supported() {
		t.Fatal("crypto/tls.Conn no longer has rawInput/input/hand as bytes.Buffer/bytes.Reader/bytes.Buffer: " +
			"Release does nothing on this Go, and every idle TLS device keeps its handshake-sized buffers; update tlsmem.go")
	}
}

// pair returns the two ends of a loopback TLS connection; the server end
// has completed its handshake by reading the client's first message, which
// is returned.
func pair(t *testing.T, client *tls.Config, first []byte) (srv, cli *tls.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan *tls.Conn, 1)
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err != nil {
			t.Error(err)
			dialed <- nil
			return
		}
		if _, err := c.Write(first); err != nil {
			t.Error(err)
		}
		dialed <- c
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	srv = tls.Server(raw, serverConfig(t))
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(first))
	if _, err := io.ReadFull(srv, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, first) {
		t.Fatalf("first message: got %q", got)
	}
	if cli = <-dialed; cli == nil {
		t.FailNow()
	}
	_ = cli.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

var (
	certOnce sync.Once
	cert     tls.Certificate
)

func serverConfig(t *testing.T) *tls.Config {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func clientConfig(maxVersion uint16) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion}
}

func held(c *tls.Conn) int {
	raw, _, hand := buffers(c)
	return raw.Cap() + hand.Cap()
}

// TestReleaseDropsTheHandshakeBuffers: a Go client's hello (with its
// post-quantum key share) leaves kilobytes behind; Release takes them and
// the connection carries data both ways afterwards, with the server end
// writing from another goroutine meanwhile (run with -race).
func TestReleaseDropsTheHandshakeBuffers(t *testing.T) {
	for _, v := range []struct {
		name string
		max  uint16
	}{{"tls1.3", tls.VersionTLS13}, {"tls1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			srv, cli := pair(t, clientConfig(v.max), []byte("CONNECT"))
			before := held(srv)
			t.Logf("buffers after the handshake: %d bytes", before)
			if v.max == tls.VersionTLS13 && before < 1500 {
				t.Fatalf("a Go client's TLS 1.3 hello left only %d bytes of buffers: the release saves nothing worth its risk", before)
			}
			if !Release(srv) {
				t.Fatal("Release refused with the handshake done and nothing unread")
			}
			if n := held(srv); n != 0 {
				t.Fatalf("after Release the buffers still hold %d bytes (were %d)", n, before)
			}

			// The server end writes while its reader releases between reads.
			var wg sync.WaitGroup
			wg.Add(2)
			out := bytes.Repeat([]byte("downlink "), 4000)
			go func() {
				defer wg.Done()
				for range 20 {
					if _, err := srv.Write(out); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, len(out))
				for range 20 {
					if _, err := io.ReadFull(cli, buf); err != nil || !bytes.Equal(buf, out) {
						t.Errorf("client read: %v", err)
						return
					}
				}
			}()
			for i := range 50 {
				msg := bytes.Repeat([]byte{byte(i)}, 1+i*997)
				go func() { _, _ = cli.Write(msg) }()
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(srv, got); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("message %d arrived changed", i)
				}
				Release(srv)
			}
			wg.Wait()
		})
	}
}

// TestReleaseLeavesUnreadInput: bytes decrypted but not yet read stay
// where they are, and are read intact.
func TestReleaseLeavesUnreadInput(t *testing.T) {
	first := bytes.Repeat([]byte("0123456789"), 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), clientConfig(0))
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = c.Write(first)
		_, _ = io.Copy(io.Discard, c)
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	srv := tls.Server(raw, serverConfig(t))
	defer srv.Close()
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 10)
	if _, err := io.ReadFull(srv, got); err != nil {
		t.Fatal(err)
	}
	if Release(srv) {
		t.Fatal("Release dropped a record with 990 bytes unread")
	}
	rest := make([]byte, len(first)-10)
	if _, err := io.ReadFull(srv, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, rest...), first) {
		t.Fatal("the message arrived changed")
	}
	if !Release(srv) {
		t.Fatal("Release refused once everything was read")
	}
}

// TestReleaseBeforeHandshake: nothing is touched before the handshake.
func TestReleaseBeforeHandshake(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Release(tls.Server(a, serverConfig(t))) {
		t.Fatal("Release ran on a connection that has not shaken hands")
	}
}
