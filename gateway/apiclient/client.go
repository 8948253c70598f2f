package apiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/api"
)

var (
	// ErrConfig wraps every problem with Options.
	ErrConfig = errors.New("apiclient: invalid options")
	// ErrUnreachable matches every *UnreachableError.
	ErrUnreachable = errors.New("apiclient: cannot reach the gateway")
)

// UnreachableError is a transport failure: nothing answered at the
// endpoint, TLS failed, or the connection broke before a whole answer came.
type UnreachableError struct {
	Endpoint string
	Err      error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("apiclient: cannot reach the gateway at %s: %v", e.Endpoint, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// ContentType is the media type of every request and answer.
const ContentType = "application/x-amz-json-1.1"

// signingService is the SigV4 service name: the gateway verifies requests
// as Kinesis does, so the AWS CLI and SDKs sign the same way.
const signingService = "kinesis"

// maxAnswerBytes bounds an answer read into memory; a GetRecords of 10,000
// records of 1 MiB cannot exceed it by much less, and the gateway caps its
// own answers well below.
const maxAnswerBytes = 64 << 20

// Options say where the gateway is and how to authenticate.
type Options struct {
	// Endpoint is the gateway's API, e.g. http://127.0.0.1:4588 or
	// https://gateway.local:4588.
	Endpoint string
	// Profile selects a profile of the shared config files; empty means
	// AWS_PROFILE, else "default".
	Profile string
	// Region is the signing region; empty means the chain's (AWS_REGION,
	// the profile's region), else us-east-1.
	Region string
	// CAFile is a PEM file of CA certificates trusted for https endpoints
	// besides the system roots; empty means AWS_CA_BUNDLE if set.
	CAFile string
	// HTTPClient, if set, sends the requests as is (CAFile must then be
	// empty: the caller owns its TLS settings). The default never uses a
	// proxy and keeps many idle connections, for a consumer's parallel
	// long-polls.
	HTTPClient *http.Client
	// Logger gets a debug line when requests go unsigned.
	Logger zerolog.Logger
}

// Client calls one gateway's API. It is safe for concurrent use.
type Client struct {
	endpoint string
	hc       *http.Client
	ownHC    bool
	creds    aws.CredentialsProvider // nil: unsigned
	region   string
	signer   *v4.Signer
	now      func() time.Time
}

// New checks o, resolves the credential chain and returns a Client. It
// does not contact the gateway.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: endpoint %q must be an http:// or https:// URL", ErrConfig, o.Endpoint)
	}
	if o.HTTPClient != nil && o.CAFile != "" {
		return nil, fmt.Errorf("%w: CAFile cannot be combined with HTTPClient", ErrConfig)
	}
	cfg, signed, err := AWSConfig(context.Background(), o)
	if err != nil {
		return nil, err
	}
	c := &Client{endpoint: strings.TrimRight(o.Endpoint, "/"), hc: o.HTTPClient, region: cfg.Region,
		signer: v4.NewSigner(), now: time.Now}
	if signed {
		c.creds = cfg.Credentials
	} else {
		o.Logger.Debug().Str("endpoint", c.endpoint).
			Msg("no AWS credentials found (environment, shared config or credentials file): requests to the gateway go unsigned")
	}
	if c.hc == nil {
		tr, err := newTransport(o.CAFile)
		if err != nil {
			return nil, err
		}
		c.hc, c.ownHC = &http.Client{Transport: tr}, true
	}
	return c, nil
}

func newTransport(caFile string) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy:               nil, // the gateway is local; never send its traffic to a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	source := "CAFile"
	if caFile == "" {
		caFile, source = os.Getenv("AWS_CA_BUNDLE"), "AWS_CA_BUNDLE"
	}
	if caFile == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, source, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: %s: no PEM certificates in %s", ErrConfig, source, caFile)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// Endpoint is the gateway's API URL, without a trailing slash.
func (c *Client) Endpoint() string { return c.endpoint }

// Signed reports whether requests are signed (the chain found credentials).
func (c *Client) Signed() bool { return c.creds != nil }

// CloseIdleConnections closes the idle connections of the client's own
// HTTP client (not of Options.HTTPClient).
func (c *Client) CloseIdleConnections() {
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
}

// Kinesis calls the Kinesis operation op (e.g. "ListShards") with in as
// the JSON body and decodes the answer into out unless out is nil.
func (c *Client) Kinesis(ctx context.Context, op string, in, out any) error {
	return c.Call(ctx, api.KinesisTargetPrefix+op, in, out)
}

// Weir calls weir's own operation op (e.g. "DescribeGateway").
func (c *Client) Weir(ctx context.Context, op string, in, out any) error {
	return c.Call(ctx, api.WeirTargetPrefix+op, in, out)
}

// Call posts in as JSON to the operation target (the whole X-Amz-Target)
// and decodes the answer into out unless out is nil.
func (c *Client) Call(ctx context.Context, target string, in, out any) error {
	b, err := c.Raw(ctx, target, in)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("apiclient: decode the answer to %s: %w: %.200s", target, err, b)
	}
	return nil
}

// Raw posts in as JSON to the operation target and returns the answer's
// body as sent (for `weir streams --json`). An error answer is *Error.
func (c *Client) Raw(ctx context.Context, target string, in any) ([]byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("apiclient: encode the request to %s: %w", target, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("X-Amz-Target", target)
	if err := c.sign(ctx, req, body); err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &UnreachableError{Endpoint: c.endpoint, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, &UnreachableError{Endpoint: c.endpoint, Err: fmt.Errorf("read the answer to %s: %w", target, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(target, resp.StatusCode, resp.Header, b)
	}
	return b, nil
}

// sign adds the SigV4 Authorization and X-Amz-Date headers when the chain
// has credentials.
func (c *Client) sign(ctx context.Context, req *http.Request, body []byte) error {
	if c.creds == nil {
		return nil
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("apiclient: AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), signingService, c.region, c.now()); err != nil {
		return fmt.Errorf("apiclient: sign the request: %w", err)
	}
	return nil
}
