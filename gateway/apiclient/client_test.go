package apiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	smithy "github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/shards"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noCredentials empties the credential chain for the test: no keys in the
// environment, no profile, shared files that do not exist.
func noCredentials(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

// gateway is a store and its API on a loopback port.
func gateway(t *testing.T) (*shards.Store, string) {
	t.Helper()
	return gatewayWith(t, api.Config{Listen: "127.0.0.1:0"})
}

func gatewayWith(t *testing.T, cfg api.Config) (*shards.Store, string) {
	t.Helper()
	st, err := shards.Open(t.TempDir(), shards.Options{
		DefaultStream: shards.StreamConfig{Rate: shards.RateConfig{OnLimit: shards.OnLimitBackpress}}.WithDefaults(),
		Durability:    shards.Durability{Fsync: shards.FsyncAlways},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(cfg, st, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close api: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st, "http://" + srv.Addr().String()
}

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// TestSignedForAVerifyingGateway: the client's signatures pass the API's
// own SigV4 check with the chain's keys, and a wrong secret comes back as
// the typed error the API sends.
func TestSignedForAVerifyingGateway(t *testing.T) {
	noCredentials(t)
	keys := filepath.Join(t.TempDir(), "api-keys.yaml")
	if err := os.WriteFile(keys, []byte("- access_key_id: AKIDREADER\n  secret_access_key: reader-secret-0123456789\n  streams: [\"*\"]\n  permissions: [read]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, endpoint := gatewayWith(t, api.Config{Listen: "127.0.0.1:0", CredentialsFile: keys})
	if _, err := st.CreateStream(shards.StreamConfig{Name: "telemetry", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	unsigned := newClient(t, Options{Endpoint: endpoint})
	if _, err := unsigned.DescribeGateway(ctx, ""); TypeOf(err) != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDREADER")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "reader-secret-0123456789")
	c := newClient(t, Options{Endpoint: endpoint})
	if !c.Signed() {
		t.Fatal("client with keys in the environment does not sign")
	}
	out, err := c.DescribeGateway(ctx, "")
	if err != nil || len(out.Streams) != 1 {
		t.Fatalf("signed DescribeGateway: %+v, %v", out, err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := newClient(t, Options{Endpoint: endpoint}).DescribeGateway(ctx, ""); TypeOf(err) != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestGateway runs every operation the tools use against the real API.
func TestGateway(t *testing.T) {
	noCredentials(t)
	st, endpoint := gateway(t)
	if _, err := st.CreateStream(shards.StreamConfig{Name: "telemetry", Shards: 2}); err != nil {
		t.Fatal(err)
	}
	rec := &shards.Record{Key: "dev-1", Data: []byte("hello"), Topic: "devices/dev-1/telemetry", ClientID: "dev-1", QoS: 1,
		Props: []shards.UserProperty{{Key: "k", Value: "v"}}}
	appended, err := st.Append(context.Background(), "telemetry", rec, shards.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Options{Endpoint: endpoint + "/"})
	if c.Signed() {
		t.Fatal("Signed() with an empty credential chain")
	}
	ctx := context.Background()

	gw, err := c.DescribeGateway(ctx, "telemetry")
	if err != nil || len(gw.Streams) != 1 || len(gw.Streams[0].Shards) != 2 || gw.Streams[0].Records != 1 {
		t.Fatalf("DescribeGateway = %+v, %v", gw, err)
	}
	list, err := c.ListShards(ctx, "telemetry")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListShards = %+v, %v", list, err)
	}
	iter, err := c.GetShardIterator(ctx, "telemetry", appended.ShardID, "TRIM_HORIZON", "")
	if err != nil || iter == "" {
		t.Fatalf("GetShardIterator = %q, %v", iter, err)
	}
	out, err := c.LongPoll(ctx, iter, 0, 10)
	if err != nil || len(out.Records) != 1 {
		t.Fatalf("LongPoll = %+v, %v", out, err)
	}
	r := out.Records[0]
	if string(r.Data) != "hello" || r.PartitionKey != "dev-1" || r.Topic != rec.Topic || r.ClientId != "dev-1" || r.QoS != 1 ||
		len(r.UserProperties) != 1 || r.UserProperties[0] != (UserProperty{"k", "v"}) || r.ApproximateArrivalTimestamp == 0 {
		t.Fatalf("record = %+v", r)
	}
	if out.NextShardIterator == nil {
		t.Fatal("an open shard's NextShardIterator is nil")
	}

	if err := c.DescribeStreamConsumer(ctx, "telemetry", "app"); TypeOf(err) != "ResourceNotFoundException" {
		t.Fatalf("DescribeStreamConsumer of an unregistered consumer = %v", err)
	}
	if err := c.RegisterStreamConsumer(ctx, "telemetry", "app"); err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterStreamConsumer(ctx, "telemetry", "app"); TypeOf(err) != "ResourceInUseException" {
		t.Fatalf("second RegisterStreamConsumer = %v", err)
	}
	if err := c.CommitCheckpoint(ctx, "telemetry", "app", appended.ShardID, r.SequenceNumber); err != nil {
		t.Fatal(err)
	}
	cps, err := c.GetCheckpoints(ctx, "telemetry", "app")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cp := range cps {
		if cp.ShardId == appended.ShardID {
			found = cp.SequenceNumber == r.SequenceNumber && cp.Status == "OK"
		}
	}
	if !found {
		t.Fatalf("GetCheckpoints = %+v, want %s at %s", cps, appended.ShardID, r.SequenceNumber)
	}

	_, err = c.DescribeGateway(ctx, "nope")
	var ae *Error
	if !errors.As(err, &ae) || ae.Type != "ResourceNotFoundException" || ae.Status != 400 || ae.Message == "" ||
		ae.Target != "WeirGateway_20261125.DescribeGateway" {
		t.Fatalf("DescribeGateway of a missing stream = %#v", err)
	}
	var se smithy.APIError
	if !errors.As(err, &se) || se.ErrorCode() != "ResourceNotFoundException" || se.ErrorFault() != smithy.FaultClient {
		t.Fatalf("not a smithy.APIError: %#v", err)
	}
	raw, err := c.Raw(ctx, api.WeirTargetPrefix+"DescribeGateway", struct{}{})
	if err != nil || !bytes.Contains(raw, []byte(`"StreamName":"telemetry"`)) {
		t.Fatalf("Raw = %s, %v", raw, err)
	}
}

func TestUnreachable(t *testing.T) {
	noCredentials(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()
	c := newClient(t, Options{Endpoint: endpoint})
	_, err := c.DescribeGateway(context.Background(), "")
	var ue *UnreachableError
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, &ue) || ue.Endpoint != endpoint || ue.Err == nil {
		t.Fatalf("err = %#v, want an UnreachableError", err)
	}
}

func TestOptionsRefused(t *testing.T) {
	noCredentials(t)
	for _, o := range []Options{
		{Endpoint: "127.0.0.1:4588"},
		{Endpoint: "ftp://127.0.0.1:4588"},
		{Endpoint: "http://"},
		{Endpoint: "http://127.0.0.1:4588", CAFile: filepath.Join(t.TempDir(), "missing.pem")},
		{Endpoint: "http://127.0.0.1:4588", CAFile: "x.pem", HTTPClient: http.DefaultClient},
		{Endpoint: "http://127.0.0.1:4588", Profile: "nosuchprofile"},
	} {
		if _, err := New(o); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", o, err)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Endpoint: "https://127.0.0.1:4588", CAFile: empty}); !errors.Is(err, ErrConfig) {
		t.Errorf("a CA file without certificates: %v", err)
	}
}

// verifier is a server that checks each request's SigV4 signature by
// signing the same request again with the credentials it expects, using
// aws-sdk-go-v2's own signer.
type verifier struct {
	t      *testing.T
	creds  aws.Credentials
	region string

	mu   sync.Mutex
	seen []string // per request: "ok", "unsigned" or what was wrong
}

func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	v.mu.Lock()
	v.seen = append(v.seen, v.check(r, body))
	v.mu.Unlock()
	w.Header().Set("Content-Type", ContentType)
	_, _ = w.Write([]byte(`{"Streams":[]}`))
}

func (v *verifier) check(r *http.Request, body []byte) string {
	got := r.Header.Get("Authorization")
	if got == "" {
		return "unsigned"
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "bad X-Amz-Date: " + err.Error()
	}
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range []string{"Content-Type", "X-Amz-Target", "X-Amz-Security-Token"} {
		if s := r.Header.Get(h); s != "" {
			again.Header.Set(h, s)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), v.creds, again, hex.EncodeToString(sum[:]), "kinesis", v.region, date); err != nil {
		return "re-sign: " + err.Error()
	}
	if want := again.Header.Get("Authorization"); got != want {
		return "signature mismatch:\n got " + got + "\nwant " + want
	}
	return "ok"
}

func (v *verifier) results() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.seen...)
}

func startVerifier(t *testing.T, creds aws.Credentials, region string) (*verifier, string) {
	v := &verifier{t: t, creds: creds, region: region}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	return v, srv.URL
}

func TestSignedWithEnvironmentKeys(t *testing.T) {
	noCredentials(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENVIRONMENT")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "env-token")
	v, endpoint := startVerifier(t, aws.Credentials{AccessKeyID: "AKIDENVIRONMENT", SecretAccessKey: "env-secret",
		SessionToken: "env-token"}, DefaultRegion)
	c := newClient(t, Options{Endpoint: endpoint})
	if !c.Signed() {
		t.Fatal("not Signed() with keys in the environment")
	}
	for range 2 {
		if _, err := c.DescribeGateway(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.results(); len(got) != 2 || got[0] != "ok" || got[1] != "ok" {
		t.Fatalf("server saw %q", got)
	}
}

func TestSignedWithProfile(t *testing.T) {
	noCredentials(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	cfg := filepath.Join(dir, "config")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(creds, "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n"+
		"[gateway]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n")
	write(cfg, "[default]\nregion = eu-west-1\n\n[profile gateway]\nregion = eu-central-1\n")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", cfg)

	cases := []struct {
		name    string
		o       Options
		env     string // AWS_PROFILE
		akid    string
		secret  string
		region  string
		wantErr bool
	}{
		{name: "default profile", akid: "AKIDDEFAULT", secret: "default-secret", region: "eu-west-1"},
		{name: "Options.Profile", o: Options{Profile: "gateway"}, akid: "AKIDPROFILE", secret: "profile-secret", region: "eu-central-1"},
		{name: "AWS_PROFILE", env: "gateway", akid: "AKIDPROFILE", secret: "profile-secret", region: "eu-central-1"},
		{name: "Options.Region wins", o: Options{Profile: "gateway", Region: "ap-south-1"}, akid: "AKIDPROFILE", secret: "profile-secret", region: "ap-south-1"},
		{name: "wrong secret is noticed", o: Options{Profile: "gateway"}, akid: "AKIDPROFILE", secret: "other", region: "eu-central-1", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_PROFILE", tc.env)
			v, endpoint := startVerifier(t, aws.Credentials{AccessKeyID: tc.akid, SecretAccessKey: tc.secret}, tc.region)
			tc.o.Endpoint = endpoint
			c := newClient(t, tc.o)
			if _, err := c.DescribeGateway(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
			got := v.results()
			if len(got) != 1 || (got[0] == "ok") == tc.wantErr {
				t.Fatalf("server saw %q (wantErr %v)", got, tc.wantErr)
			}
		})
	}
}

// TestUnsignedWithoutCredentials also proves the chain does not wait on
// the EC2 metadata service, whose timeouts take seconds.
func TestUnsignedWithoutCredentials(t *testing.T) {
	noCredentials(t)
	v, endpoint := startVerifier(t, aws.Credentials{}, DefaultRegion)
	start := time.Now()
	c := newClient(t, Options{Endpoint: endpoint})
	if _, err := c.DescribeGateway(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("New and one call took %v: is the metadata service asked?", d)
	}
	if c.Signed() {
		t.Error("Signed() without credentials")
	}
	if got := v.results(); len(got) != 1 || got[0] != "unsigned" {
		t.Fatalf("server saw %q", got)
	}
}

func TestHTTPSWithCAFile(t *testing.T) {
	noCredentials(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"Streams":[]}`))
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	_, err := newClient(t, Options{Endpoint: srv.URL}).DescribeGateway(ctx, "")
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unknown CA: %v", err)
	}
	if _, err := newClient(t, Options{Endpoint: srv.URL, CAFile: ca}).DescribeGateway(ctx, ""); err != nil {
		t.Fatalf("with CAFile: %v", err)
	}
	t.Setenv("AWS_CA_BUNDLE", ca)
	if _, err := newClient(t, Options{Endpoint: srv.URL}).DescribeGateway(ctx, ""); err != nil {
		t.Fatalf("with AWS_CA_BUNDLE: %v", err)
	}
}
