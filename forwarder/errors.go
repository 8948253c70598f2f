package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Sentinel errors.
var (
	// ErrCredentials wraps a failure to obtain AWS credentials from the
	// default chain or the configured profile.
	ErrCredentials = errors.New("forwarder: no usable AWS credentials")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("forwarder: closed")
	// ErrBadResponse says a PutRecords answer did not match its request.
	ErrBadResponse = errors.New("forwarder: malformed PutRecords response")
	// ErrHTTPStatus is wrapped by *HTTPStatusError.
	ErrHTTPStatus = errors.New("forwarder: http sink endpoint refused the batch")
	// ErrSecret: a secret's environment variable or file is missing or
	// empty.
	ErrSecret = errors.New("forwarder: secret unavailable")
	// ErrUnsupportedKind: this build has no sink of the configured kind.
	ErrUnsupportedKind = errors.New("forwarder: sink kind not available")
)

// failKind sorts upstream failures by what the forwarder does about them.
type failKind int

const (
	// transient: retry with backoff (throttling, 5xx, timeouts, resets,
	// unknown errors). Resending may duplicate, never reorder.
	transient failKind = iota
	// permanent: an operator must fix something (stream missing, access
	// denied, bad credentials, KMS key unusable, request rejected as
	// invalid). Pause and probe until it is fixed; drop nothing.
	permanent
)

// failure is a classified upstream error.
type failure struct {
	kind failKind
	code string // Kinesis error code, HTTP status or a short name
	msg  string
	fix  string // for permanent failures: what the operator should do
	// retryAfter is the least wait before the next request the upstream
	// asked for (HTTP Retry-After).
	retryAfter time.Duration
}

// permanentCodes are error codes that retrying will not cure, with what
// to fix.
var permanentCodes = map[string]string{
	"ResourceNotFoundException":    "create the upstream stream, or fix target_stream, region or endpoint",
	"AccessDeniedException":        "allow kinesis:PutRecords (and kinesis:ListShards) on the stream in the IAM policy of these credentials",
	"UnrecognizedClientException":  "the access key is not valid: fix the credentials or profile",
	"InvalidSignatureException":    "the secret key is wrong or the clock is off: fix the credentials or sync the clock",
	"IncompleteSignature":          "the request signature is incomplete: fix the credentials",
	"IncompleteSignatureException": "the request signature is incomplete: fix the credentials",
	"MissingAuthenticationToken":   "no credentials were sent: configure credentials",
	"InvalidClientTokenId":         "the access key is not valid: fix the credentials or profile",
	"ExpiredToken":                 "the session credentials expired: refresh them",
	"ExpiredTokenException":        "the session credentials expired: refresh them",
	"SignatureDoesNotMatch":        "the secret key is wrong: fix the credentials",
	"KMSAccessDeniedException":     "allow kms:GenerateDataKey on the stream's KMS key for these credentials",
	"KMSDisabledException":         "enable the stream's KMS key",
	"KMSInvalidStateException":     "the stream's KMS key is in an unusable state: check it in KMS",
	"KMSNotFoundException":         "the stream's KMS key does not exist: fix the stream's encryption",
	"KMSOptInRequired":             "the account must subscribe to KMS",
	"InvalidArgumentException":     "the upstream rejected the request as invalid: check the target stream's limits (record size) and the endpoint",
	"ValidationException":          "the upstream rejected the request as invalid: check target_stream",
}

// entryKind maps a per-entry ErrorCode of a PutRecords response.
func entryKind(code string) entryResult {
	switch code {
	case "":
		return entryOK
	case "ProvisionedThroughputExceededException", "KMSThrottlingException", "ThrottlingException", "LimitExceededException":
		return entryThrottled
	default:
		return entryFailed
	}
}

// classify sorts a PutRecords (or ListShards) error.
func classify(err error) failure {
	if errors.Is(err, ErrCredentials) {
		return failure{kind: permanent, code: "NoCredentials", msg: err.Error(),
			fix: "provide credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a shared-config profile (profile:), or an instance/container role"}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		if fix, ok := permanentCodes[code]; ok {
			return failure{kind: permanent, code: code, msg: ae.ErrorMessage(), fix: fix}
		}
		if code != "" {
			return failure{kind: transient, code: code, msg: ae.ErrorMessage()}
		}
	}
	// The SDK wraps a request that never got an answer (reset, refused,
	// timed out) in a ResponseError with status 0: that is a connection
	// problem, not an HTTP status, and the operator should see it as one.
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		return failure{kind: transient, code: fmt.Sprintf("HTTP%d", re.HTTPStatusCode()), msg: err.Error()}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return failure{kind: transient, code: "Timeout", msg: err.Error()}
	}
	return failure{kind: transient, code: "ConnectionError", msg: err.Error()}
}
