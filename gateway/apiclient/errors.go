package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	smithy "github.com/aws/smithy-go"
)

// Error is an error answer of the gateway. It also satisfies smithy-go's
// APIError interface (ErrorCode, ErrorMessage, ErrorFault), so code that
// handles AWS SDK errors handles it too.
type Error struct {
	// Target is the operation called (the whole X-Amz-Target).
	Target string
	// Status is the HTTP status.
	Status int
	// Type is the exception name (e.g. ResourceNotFoundException), empty
	// when the answer named none (a proxy's 502, say).
	Type string
	// Message is the answer's message or, when the body is not an error
	// document, the start of the body.
	Message string
}

func (e *Error) Error() string {
	typ := e.Type
	if typ == "" {
		typ = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s: %d %s: %s", e.Target, e.Status, typ, e.Message)
}

// ErrorCode is Type.
func (e *Error) ErrorCode() string { return e.Type }

// ErrorMessage is Message.
func (e *Error) ErrorMessage() string { return e.Message }

// ErrorFault blames the client for 4xx answers, the server for the rest.
func (e *Error) ErrorFault() smithy.ErrorFault {
	if e.Status >= 400 && e.Status < 500 {
		return smithy.FaultClient
	}
	return smithy.FaultServer
}

// Temporary reports whether retrying later may succeed: the gateway is
// overloaded, throttling or failing.
func (e *Error) Temporary() bool {
	switch e.Type {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException":
		return true
	}
	return e.Status >= 500
}

// maxMessage bounds a message taken from a body that is not an error
// document.
const maxMessage = 200

// decodeError reads an error answer as the AWS SDKs do: `__type` from the
// JSON body without any "namespace#" prefix, else the X-Amzn-ErrorType
// header without its ":url" suffix; `message` or `Message`.
func decodeError(target string, status int, h http.Header, body []byte) *Error {
	var doc struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	isDoc := json.Unmarshal(body, &doc) == nil
	e := &Error{Target: target, Status: status, Type: doc.Type, Message: doc.Message}
	if i := strings.LastIndexByte(e.Type, '#'); i >= 0 {
		e.Type = e.Type[i+1:]
	}
	if e.Type == "" {
		e.Type = h.Get("X-Amzn-ErrorType")
		if i := strings.IndexByte(e.Type, ':'); i >= 0 {
			e.Type = e.Type[:i]
		}
	}
	if e.Message == "" {
		e.Message = doc.Message2
	}
	if e.Message == "" && !isDoc {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > maxMessage {
			e.Message = e.Message[:maxMessage] + "..."
		}
	}
	return e
}

// TypeOf returns the exception name of an *Error in err's chain, "" for
// other errors.
func TypeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Type
	}
	return ""
}

var _ smithy.APIError = (*Error)(nil)
