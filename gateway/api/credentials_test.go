package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

func TestParseCredentials(t *testing.T) {
	const good = "  secret_access_key: 0123456789abcdef0123\n  streams: [a]\n  permissions: [read]\n"
	tests := []struct {
		name, file string
		want       []string // each error, "k.yaml:LINE: msg-prefix"
	}{
		{"empty", "", []string{"k.yaml: lists no access keys"}},
		{"empty_list", "[]\n", []string{"k.yaml:1: lists no access keys"}},
		{"not_list", "access_key_id: A\n", []string{"k.yaml:1: must be a YAML list"}},
		{"syntax", "- [\n", []string{"k.yaml: yaml: line"}},
		{"unknown_key", "- access_key_id: A\n" + good + "  streams_rw: [b]\n", []string{`k.yaml:5: unknown key "streams_rw"`}},
		{"missing", "- access_key_id: A\n  streams: [a]\n", []string{"k.yaml:1: secret_access_key is required", "k.yaml:1: permissions is required"}},
		{"empty_secret", "- access_key_id: A\n  secret_access_key: ''\n  streams: [a]\n  permissions: [read]\n", []string{"k.yaml:2: secret_access_key is empty"}},
		{"short_secret", "- access_key_id: A\n  secret_access_key: hunter2\n  streams: [a]\n  permissions: [read]\n", []string{"k.yaml:2: secret_access_key is 7 characters"}},
		{"null_secret", "- access_key_id: A\n  secret_access_key:\n  streams: [a]\n  permissions: [read]\n", []string{"k.yaml:2: secret_access_key must be a string"}},
		{"duplicate", "- access_key_id: A\n" + good + "- access_key_id: A\n" + good, []string{`k.yaml:5: access_key_id "A" is also at line 1`}},
		{"dup_field", "- access_key_id: A\n  access_key_id: B\n" + good, []string{"k.yaml:2: access_key_id is given twice (also at line 1)"}},
		{"bad_perm", "- access_key_id: A\n  secret_access_key: 0123456789abcdef0123\n  streams: [a]\n  permissions: [read, delete]\n",
			[]string{`k.yaml:4: permissions: unknown permission "delete"`}},
		{"bad_stream", "- access_key_id: A\n  secret_access_key: 0123456789abcdef0123\n  streams: [a/b]\n  permissions: [read]\n",
			[]string{`k.yaml:3: streams: "a/b" is neither`}},
		{"streams_scalar", "- access_key_id: A\n  secret_access_key: 0123456789abcdef0123\n  streams: a\n  permissions: [read]\n",
			[]string{"k.yaml:3: streams must be a list"}},
		{"empty_streams", "- access_key_id: A\n  secret_access_key: 0123456789abcdef0123\n  streams: []\n  permissions: [read]\n",
			[]string{"k.yaml:1: streams is empty"}},
		{"bad_id", "- access_key_id: A/B\n" + good, []string{`k.yaml:1: access_key_id "A/B" must be`}},
		{"entry_scalar", "- A\n", []string{"k.yaml:1: an access key must be a mapping"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := parseCredentials("k.yaml", []byte(tc.file))
			if err == nil {
				t.Fatalf("accepted: %+v", cs)
			}
			if !errors.Is(err, ErrCredentials) {
				t.Fatalf("%v is not ErrCredentials", err)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("errors:\n%v\nwant %d", err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("[%d] %q, want prefix %q", i, got[i], w)
				}
			}
		})
	}
	cs, err := parseCredentials("k.yaml", []byte(testKeys))
	if err != nil {
		t.Fatal(err)
	}
	if c := cs.keys["AKIDOTHER"]; c == nil || c.perms != permRead|permWrite|permAdmin || !c.mayUse("other") || c.mayUse("telemetry") {
		t.Fatalf("AKIDOTHER = %+v", c)
	}
	if c := cs.keys[testKeyID]; !c.all || !c.mayUse("anything") {
		t.Fatalf("%s = %+v", testKeyID, c)
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(testKeys))
	f.Add([]byte("- access_key_id: A\n  access_key_id: B\n"))
	f.Add([]byte("- {access_key_id: A, secret_access_key: 0123456789abcdef, streams: ['*'], permissions: [admin]}\n"))
	f.Add([]byte("[1, [2], {a: b}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := parseCredentials("f.yaml", b)
		if err != nil {
			if !errors.Is(err, ErrCredentials) {
				t.Fatalf("error %v is not ErrCredentials", err)
			}
			return
		}
		if len(cs.keys) == 0 {
			t.Fatal("accepted a file with no keys")
		}
		for id, c := range cs.keys {
			if id != c.id || c.perms == 0 || (!c.all && len(c.streams) == 0) || len(c.secret) < 4+minSecretLen {
				t.Fatalf("accepted an unusable key %+v", c)
			}
		}
	})
}

// writeCert makes a self-signed certificate for 127.0.0.1 with common
// name cn, returning its pool.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSAndReload serves HTTPS with credentials, then reloads: a bad
// credentials file is refused with its line and the old keys stay; a new
// certificate and new keys take effect without a restart.
func TestTLSAndReload(t *testing.T) {
	e := newEnv(t, envOptions{})
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir, "first")
	keysFile := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(keysFile, []byte(testKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := mustNew(t, Config{Listen: "127.0.0.1:0", CredentialsFile: keysFile, TLS: TLSConfig{CertFile: certFile, KeyFile: keyFile}},
		e.store, Options{Clock: e.clock.Now})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	seen := ""
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, VerifyConnection: func(cs tls.ConnectionState) error {
		seen = cs.PeerCertificates[0].Subject.CommonName
		return nil
	}}}
	defer tr.CloseIdleConnections()
	client := func(id, secret string) *kinesis.Client {
		return kinesis.New(kinesis.Options{BaseEndpoint: aws.String("https://" + srv.Addr().String()), Region: "local", RetryMaxAttempts: 1,
			HTTPClient: &http.Client{Transport: tr}, Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	}
	ctx := e.ctx()
	if _, err := client(testKeyID, testSecret).CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("telemetry"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("CreateStream over TLS: %v", err)
	}
	if seen != "first" {
		t.Fatalf("certificate %q", seen)
	}
	wantCode(t, put(client("AKIDWRITER", "wrong-secret-0123456789"), ctx, "telemetry"), errInvalidSignature)

	if err := os.WriteFile(keysFile, []byte("- access_key_id: AKIDWRITER\n  secret_access_key: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := srv.ReloadCredentials()
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), keysFile+":2: secret_access_key is 1 characters") {
		t.Fatalf("reload of a bad file: %v", err)
	}
	if err := put(client("AKIDWRITER", testSecrets["AKIDWRITER"]), ctx, "telemetry"); err != nil {
		t.Fatalf("old keys after a refused reload: %v", err)
	}

	_, _, pool2 := writeCert(t, dir, "second")
	if err := os.WriteFile(keysFile, []byte("- access_key_id: AKIDNEW\n  secret_access_key: new-secret-0123456789\n  streams: ['*']\n  permissions: [write]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadCredentials(); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	tr.TLSClientConfig.RootCAs = pool2
	wantCode(t, put(client("AKIDWRITER", testSecrets["AKIDWRITER"]), ctx, "telemetry"), errUnrecognized)
	if err := put(client("AKIDNEW", "new-secret-0123456789"), ctx, "telemetry"); err != nil || seen != "second" {
		t.Fatalf("after reload: err %v, certificate %q", err, seen)
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadCredentials(); !errors.Is(err, ErrTLS) {
		t.Fatalf("reload of a bad certificate: %v", err)
	}
}
