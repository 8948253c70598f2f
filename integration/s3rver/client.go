package s3rver

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is what test clients sign with.
const Region = "us-east-1"

// Credentials are the key s3rver knows (it checks the key, not the
// signature).
var Credentials = credentials.NewStaticCredentialsProvider("S3RVER", "S3RVER", "")

// NewClient returns an S3 client for endpoint with path-style addressing,
// s3rver's credentials and checksums only where S3 requires them (s3rver
// predates the SDK's default CRC checksums).
func NewClient(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     Region,
		Credentials:                Credentials,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}
