package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// benchPKI is a throw-away CA for the TLS modes: a server certificate for
// 127.0.0.1 written where weir's config points (mqtt.listeners[].tls), and
// one client certificate per device, made in memory, whose CN is the
// device's client id (identity_from: cn).
type benchPKI struct {
	caFile, certFile, keyFile string
	ca                        *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	pool                      *x509.CertPool

	mu      sync.Mutex
	clients map[string]tls.Certificate
}

func newBenchPKI(dir string) (*benchPKI, error) {
	p := &benchPKI{clients: map[string]tls.Certificate{}, pool: x509.NewCertPool()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := certTemplate(pkix.Name{CommonName: "weir-bench CA"})
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	p.caKey = caKey
	p.pool.AddCert(p.ca)
	p.caFile = filepath.Join(dir, "ca.crt")
	if err := writePEMFile(p.caFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	srv := certTemplate(pkix.Name{CommonName: "localhost"})
	srv.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	srv.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	cert, err := p.issue(srv)
	if err != nil {
		return nil, err
	}
	p.certFile, p.keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	kder, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, err
	}
	if err := writePEMFile(p.certFile, "CERTIFICATE", cert.Certificate[0]); err != nil {
		return nil, err
	}
	return p, writePEMFile(p.keyFile, "PRIVATE KEY", kder)
}

func certTemplate(subject pkix.Name) *x509.Certificate {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return &x509.Certificate{SerialNumber: n, Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
}

func (p *benchPKI) issue(tmpl *x509.Certificate) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// clientTLS is device id's TLS config: it trusts the CA and, with mtls,
// presents a certificate whose CN is id (made once, then reused).
func (p *benchPKI) clientTLS(id string, mtls bool) (*tls.Config, error) {
	c := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if !mtls {
		return c, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cert, ok := p.clients[id]
	if !ok {
		tmpl := certTemplate(pkix.Name{CommonName: id})
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		var err error
		if cert, err = p.issue(tmpl); err != nil {
			return nil, err
		}
		p.clients[id] = cert
	}
	c.Certificates = []tls.Certificate{cert}
	return c, nil
}

func writePEMFile(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// tlsListenerYAML is weir's mqtt.listeners entry for the TLS target.
func tlsListenerYAML(addr string, p *benchPKI, mtls bool) string {
	s := fmt.Sprintf("\n  listeners:\n    - listen: %s\n      tls:\n        cert_file: %q\n        key_file: %q", addr, p.certFile, p.keyFile)
	if mtls {
		s += fmt.Sprintf("\n        client_ca_file: %q\n        require_client_cert: true\n        identity_from: cn", p.caFile)
	}
	return s
}

// handshakeResult is one run of the connect loop.
type handshakeResult struct {
	Connects   uint64  `json:"connects"`
	PerSec     float64 `json:"connects_per_sec"`
	Errors     uint64  `json:"errors"`
	BrokerCPU  float64 `json:"broker_cpu_us_per_connect,omitempty"`
	LoadCPU    float64 `json:"load_cpu_us_per_connect,omitempty"`
	ClientCert bool    `json:"client_cert"`
}

// runHandshakes has workers connect (TCP, TLS when dial says so, MQTT
// CONNECT, CONNACK) and close, over and over, for the window: how many
// new devices per second the broker admits, e.g. after a power cut of a
// whole site, when every device reconnects at once.
func runHandshakes(ctx context.Context, addr string, workers int, window time.Duration, pid int, conf func(id string) (*tls.Config, error)) (handshakeResult, error) {
	var n, errs atomic.Uint64
	from := time.Now()
	to := from.Add(window)
	cpu := make(chan [2]time.Duration, 1)
	go func() { cpu <- cpuOverWindow(ctx, pid, from, to) }()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && time.Now().Before(to); i++ {
				id := fmt.Sprintf("hs-%03d-%06d", w, i%1000)
				if err := connectOnce(ctx, addr, id, conf); err != nil {
					errs.Add(1)
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	r := handshakeResult{Connects: n.Load(), Errors: errs.Load()}
	r.PerSec = float64(r.Connects) / window.Seconds()
	if c := <-cpu; r.Connects > 0 {
		r.BrokerCPU = float64(c[0].Microseconds()) / float64(r.Connects)
		r.LoadCPU = float64(c[1].Microseconds()) / float64(r.Connects)
	}
	if r.Errors > r.Connects/100 {
		return r, fmt.Errorf("%d of %d connects failed", r.Errors, r.Errors+r.Connects)
	}
	return r, ctx.Err()
}

func connectOnce(ctx context.Context, addr, id string, conf func(id string) (*tls.Config, error)) error {
	c, err := dialDevice(ctx, addr, id, conf)
	if err != nil {
		return err
	}
	return c.Close()
}

// dialDevice connects one raw device (see dialOne), over TLS when conf is
// set, and waits for its CONNACK.
func dialDevice(ctx context.Context, addr, id string, conf func(id string) (*tls.Config, error)) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if conf != nil {
		tc, err := conf(id)
		if err != nil {
			c.Close()
			return nil, err
		}
		c = tls.Client(c, tc)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write(connectPacket(id)); err != nil {
		c.Close()
		return nil, err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: CONNACK: %w", id, err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("%s: CONNACK % x: refused", id, ack)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
