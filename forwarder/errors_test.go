package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestClassify(t *testing.T) {
	resp503 := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: errors.New("service unavailable")}}
	// A request that got no response: the SDK still wraps it in a
	// ResponseError, with status 0.
	noResponse := func(err error) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{}}, Err: &smithyhttp.RequestSendError{Err: err}}}
	}
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "Kinesis", OperationName: "PutRecords", Err: err}
	}
	cases := []struct {
		name string
		err  error
		kind failKind
		code string
	}{
		{"stream_missing", op(apiErr("ResourceNotFoundException")), permanent, "ResourceNotFoundException"},
		{"prefixed_code", op(apiErr("com.amazonaws.kinesis#AccessDeniedException")), permanent, "AccessDeniedException"},
		{"bad_key", op(apiErr("UnrecognizedClientException")), permanent, "UnrecognizedClientException"},
		{"bad_signature", op(apiErr("InvalidSignatureException")), permanent, "InvalidSignatureException"},
		{"expired", op(apiErr("ExpiredTokenException")), permanent, "ExpiredTokenException"},
		{"kms_denied", op(apiErr("KMSAccessDeniedException")), permanent, "KMSAccessDeniedException"},
		{"no_credentials", op(fmt.Errorf("get identity: %w", fmt.Errorf("%w: %w", ErrCredentials, errors.New("no EC2 IMDS role found")))), permanent, "NoCredentials"},
		{"throttled", op(apiErr("ProvisionedThroughputExceededException")), transient, "ProvisionedThroughputExceededException"},
		{"kms_throttled", op(apiErr("KMSThrottlingException")), transient, "KMSThrottlingException"},
		{"internal", op(apiErr("InternalFailure")), transient, "InternalFailure"},
		{"http_503", op(resp503), transient, "HTTP503"},
		{"timeout", op(fmt.Errorf("send: %w", context.DeadlineExceeded)), transient, "Timeout"},
		{"reset", op(&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}), transient, "ConnectionError"},
		{"reset_no_response", op(noResponse(&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")})), transient, "ConnectionError"},
		{"refused_no_response", op(noResponse(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})), transient, "ConnectionError"},
		{"timeout_no_response", op(noResponse(fmt.Errorf("read: %w", context.DeadlineExceeded))), transient, "Timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := classify(tc.err)
			if f.kind != tc.kind || f.code != tc.code {
				t.Fatalf("classify = %v %q, want %v %q", f.kind, f.code, tc.kind, tc.code)
			}
			if f.kind == permanent && f.fix == "" {
				t.Fatal("a permanent failure without a fix")
			}
		})
	}
	for code, want := range map[string]entryResult{
		"": entryOK, "ProvisionedThroughputExceededException": entryThrottled,
		"KMSThrottlingException": entryThrottled, "InternalFailure": entryFailed,
	} {
		if got := entryKind(code); got != want {
			t.Fatalf("entryKind(%q) = %v, want %v", code, got, want)
		}
	}
}
