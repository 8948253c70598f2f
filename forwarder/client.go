package forwarder

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// PutRecordsAPI is the one call the forwarder needs; *kinesis.Client has
// it, and tests may wrap it.
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// ListShardsAPI is optional: when the client also has it, the forwarder
// learns the upstream hash ranges and paces a throttled upstream shard
// without slowing keys that go elsewhere.
type ListShardsAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// NewClient builds the Kinesis client for cfg with aws-sdk-go-v2: the
// default credential chain (environment, shared config and profiles,
// container and instance roles) or cfg.Profile, cfg.Region, cfg.Endpoint
// as the base endpoint, and no SDK retries (the forwarder retries itself,
// per entry, keeping order). The HTTP timeout is cfg.RequestTimeout.
// extra load options come last (tests pass static credentials).
func NewClient(ctx context.Context, cfg Config, httpClient aws.HTTPClient, extra ...func(*config.LoadOptions) error) (*kinesis.Client, error) {
	cfg = cfg.WithDefaults()
	if httpClient == nil {
		httpClient = newHTTPClient(cfg)
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithHTTPClient(httpClient),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	opts = append(opts, extra...)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("forwarder: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		// A custom endpoint still needs a region to sign with.
		awsCfg.Region = "us-east-1"
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = taggedCredentials{awsCfg.Credentials}
	}
	return kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}), nil
}

// newHTTPClient is the SDK's buildable client (so AWS_CA_BUNDLE and the
// like still apply) with the request timeout and enough idle connections
// for every request in flight (Go's default of 2 per host would reconnect
// all the time).
func newHTTPClient(cfg Config) aws.HTTPClient {
	return awshttp.NewBuildableClient().
		WithTimeout(cfg.RequestTimeout.D()).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = min(cfg.RequestTimeout.D(), 10*time.Second) }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = cfg.MaxInFlight + 4
			tr.MaxIdleConnsPerHost = cfg.MaxInFlight + 4
		})
}

// taggedCredentials marks credential failures with ErrCredentials, so they
// pause the forwarder with a clear message instead of being retried as a
// network error.
type taggedCredentials struct{ p aws.CredentialsProvider }

func (t taggedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := t.p.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return c, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	return c, nil
}
