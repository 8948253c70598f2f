package apiclient

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// DefaultRegion signs requests when neither Options.Region nor the chain
// names a region: the gateway accepts any region, and the AWS CLI needs one.
const DefaultRegion = "us-east-1"

// AWSConfig loads the standard AWS configuration the way Client does:
// o.Profile, o.Region (defaulting to DefaultRegion), o.CAFile for the
// SDK's own HTTP client, and the EC2 metadata service disabled. signed
// reports whether the chain found credentials; when it did not,
// cfg.Credentials is the chain's last resort, which fails every Retrieve.
// Tools that go through an AWS SDK client (firmware-sim verify) use it so
// that they resolve credentials exactly as the weir tools do.
func AWSConfig(ctx context.Context, o Options) (cfg aws.Config, signed bool, err error) {
	opts := []func(*config.LoadOptions) error{config.WithEC2IMDSClientEnableState(imds.ClientDisabled)}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.CAFile != "" {
		f, err := os.Open(o.CAFile)
		if err != nil {
			return cfg, false, fmt.Errorf("%w: CAFile: %w", ErrConfig, err)
		}
		defer f.Close()
		opts = append(opts, config.WithCustomCABundle(f))
	}
	cfg, err = config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, false, fmt.Errorf("%w: AWS configuration: %w", ErrConfig, err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	// The chain ends in the EC2 role provider when nothing earlier (keys
	// in the environment or a profile, SSO, a process, a container)
	// applies. With the metadata service disabled that provider can
	// only fail: there are no credentials.
	signed = cfg.Credentials != nil && !aws.IsCredentialsProvider(cfg.Credentials, &ec2rolecreds.Provider{})
	return cfg, signed, nil
}
