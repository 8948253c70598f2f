package s3sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Sentinel errors.
var (
	// ErrCredentials wraps a failure to obtain AWS credentials from the
	// default chain or the configured profile.
	ErrCredentials = errors.New("s3sink: no usable AWS credentials")
	// ErrInvalidObject says an Object or a setting cannot be written:
	// no records, records out of order, a record the format cannot hold.
	ErrInvalidObject = errors.New("s3sink: invalid object")
	// ErrInvalidConfig says New was given a Config or Options it cannot
	// work with.
	ErrInvalidConfig = errors.New("s3sink: invalid configuration")
	// ErrCorrupt says an object's contents do not decode.
	ErrCorrupt = errors.New("s3sink: corrupt object")
)

// CorruptError locates damage in a raw object: Offset is the byte offset
// (in the decompressed stream) of the record that does not decode, Record
// how many records before it decoded.
type CorruptError struct {
	Offset int64
	Record int
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: record %d at offset %d: %s", ErrCorrupt, e.Record, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// permanentCodes are S3 error codes that retrying will not cure, with what
// the operator should fix.
var permanentCodes = map[string]string{
	"NoSuchBucket":                       "the bucket does not exist: create it, or fix bucket, endpoint or region",
	"InvalidBucketName":                  "the store refuses the bucket name: fix bucket",
	"AccessDenied":                       "allow s3:PutObject and s3:AbortMultipartUpload on the bucket's objects under the prefix for these credentials (and kms:GenerateDataKey if the bucket encrypts with KMS)",
	"AllAccessDisabled":                  "all access to the bucket is disabled: check the bucket or the account",
	"AccountProblem":                     "the account has a problem (billing or suspension): check it with the provider",
	"NotSignedUp":                        "the account is not signed up for S3",
	"InvalidAccessKeyId":                 "the access key does not exist at this endpoint: fix the credentials or profile",
	"SignatureDoesNotMatch":              "the secret key is wrong: fix the credentials or profile",
	"InvalidToken":                       "the session token is not valid: refresh the credentials",
	"ExpiredToken":                       "the session credentials expired: refresh them",
	"TokenRefreshRequired":               "the session credentials must be refreshed",
	"AuthorizationHeaderMalformed":       "the request was signed for the wrong region: set region to the bucket's region",
	"PermanentRedirect":                  "the bucket is in another region or needs another endpoint: set region (or endpoint) to the bucket's",
	"IllegalLocationConstraintException": "the bucket is in another region: set region to the bucket's region",
	"InvalidRequest":                     "the store rejected the request: check the bucket's settings (object lock, encryption) and path_style",
	"NotImplemented":                     "the store does not implement a call the sink needs (PutObject, multipart upload): use a store that does",
	"MethodNotAllowed":                   "the store does not allow writing objects here: check bucket, endpoint and path_style",
	"EntityTooLarge":                     "the store refuses objects this large: lower max_object_bytes",
	"EntityTooSmall":                     "the store refuses multipart parts this small: raise the part size",
	"QuotaExceeded":                      "the bucket's quota is used up: free space or raise the quota",
	"XMinioStorageFull":                  "the store's disks are full: free space",
	"KMS.DisabledException":              "enable the bucket's KMS key",
	"KMS.NotFoundException":              "the bucket's KMS key does not exist: fix the bucket's encryption",
}

// Classify sorts an error of Put. permanent means an operator must fix
// something (reason says what) and retrying will not help before then;
// otherwise the error is transient (throttling, 5xx, timeouts, connection
// errors, unknown errors) and reason names it briefly. Retrying a Put is
// always safe: it rewrites the same object.
func Classify(err error) (permanent bool, reason string) {
	switch {
	case err == nil:
		return false, ""
	case errors.Is(err, ErrCredentials):
		return true, "provide credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a shared-config profile (profile:), or a container role (instance roles need AWS_EC2_METADATA_DISABLED=false)"
	case errors.Is(err, ErrInvalidObject):
		return true, "the object cannot be written as configured: " + err.Error()
	case errors.Is(err, context.Canceled):
		return false, "canceled"
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if fix, ok := permanentCodes[code]; ok {
			return true, fix + " (" + code + ")"
		}
		if strings.HasPrefix(code, "KMS.") {
			return true, "the bucket's KMS key is unusable for these credentials: check the key and kms:GenerateDataKey (" + code + ")"
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		status := re.HTTPStatusCode()
		code := ""
		if ae != nil {
			code = ae.ErrorCode()
		}
		switch {
		case status == http.StatusMovedPermanently:
			return true, permanentCodes["PermanentRedirect"] + " (HTTP 301)"
		case code == "" && status == http.StatusForbidden:
			return true, permanentCodes["AccessDenied"] + " (HTTP 403)"
		case code == "" && status == http.StatusNotFound:
			return true, "the store answers 404 Not Found: check bucket, endpoint and path_style (HTTP 404)"
		case code != "":
			return false, fmt.Sprintf("%s (HTTP %d)", code, status)
		}
		return false, fmt.Sprintf("HTTP %d", status)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return false, "timeout"
	}
	return false, "connection error"
}
