package verify

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/weir-gateway/weir/gateway/apiclient"
)

// ClientOptions say where the Kinesis-compatible API is and how to sign.
type ClientOptions struct {
	// Endpoint is the base URL (the gateway's API, kinesalite, ...);
	// empty means AWS itself.
	Endpoint string
	// Region defaults to the chain's (AWS_REGION, the profile's), else
	// us-east-1.
	Region string
	// Profile selects a profile of the shared config files; empty means
	// AWS_PROFILE, else "default".
	Profile string
	// CAFile is a PEM file of CA certificates trusted for an https
	// Endpoint besides the system roots; empty means AWS_CA_BUNDLE.
	CAFile string
}

// NewClient builds a Kinesis client whose credentials come from the
// standard AWS chain, resolved as the weir tools resolve them
// (apiclient.AWSConfig: the EC2 metadata service is never asked). When
// the chain has none it signs with dummy static ones: the gateway without
// api.credentials_file accepts them, and kinesalite refuses unsigned
// requests.
func NewClient(ctx context.Context, o ClientOptions) (*kinesis.Client, error) {
	cfg, signed, err := apiclient.AWSConfig(ctx, apiclient.Options{Profile: o.Profile, Region: o.Region, CAFile: o.CAFile})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if !signed {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("firmware-sim", "firmware-sim", "")
	}
	return kinesis.NewFromConfig(cfg, func(k *kinesis.Options) {
		if o.Endpoint != "" {
			k.BaseEndpoint = aws.String(o.Endpoint)
		}
	}), nil
}
