package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// ClientOptions say where the Kinesis-compatible API is.
type ClientOptions struct {
	// Endpoint is the base URL (the gateway's API, kinesalite, ...);
	// empty means AWS itself.
	Endpoint string
	// Region defaults to AWS_REGION, or us-east-1 with an Endpoint.
	Region string
}

// NewClient builds a Kinesis client. Without credentials in the
// environment (keys, a profile or a shared credentials file) it signs with
// dummy static ones, which local emulators and the gateway accept, and it
// never asks the EC2 metadata service.
func NewClient(ctx context.Context, o ClientOptions) (*kinesis.Client, error) {
	opts := []func(*config.LoadOptions) error{config.WithEC2IMDSClientEnableState(imds.ClientDisabled)}
	region := o.Region
	if region == "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		region = "us-east-1"
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if !haveCredentials() {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("firmware-sim", "firmware-sim", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("verify: aws config: %w", err)
	}
	return kinesis.NewFromConfig(cfg, func(k *kinesis.Options) {
		if o.Endpoint != "" {
			k.BaseEndpoint = aws.String(o.Endpoint)
		}
	}), nil
}

func haveCredentials() bool {
	if os.Getenv("AWS_ACCESS_KEY_ID") != "" || os.Getenv("AWS_PROFILE") != "" || os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "" {
		return true
	}
	f := os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
	if f == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return false
		}
		f = filepath.Join(home, ".aws", "credentials")
	}
	_, err := os.Stat(f)
	return err == nil
}
