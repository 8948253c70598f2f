package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/weir-gateway/weir/shards"
)

// Kinesis exception names, as they appear in `__type` and X-Amzn-ErrorType.
const (
	errResourceNotFound   = "ResourceNotFoundException"
	errResourceInUse      = "ResourceInUseException"
	errInvalidArgument    = "InvalidArgumentException"
	errValidation         = "ValidationException"
	errSerialization      = "SerializationException"
	errThroughputExceeded = "ProvisionedThroughputExceededException"
	errLimitExceeded      = "LimitExceededException"
	errExpiredIterator    = "ExpiredIteratorException"
	errExpiredNextToken   = "ExpiredNextTokenException"
	errUnknownOperation   = "UnknownOperationException"
	errInternalFailure    = "InternalFailure"
	errServiceUnavailable = "ServiceUnavailable"
	errKMSNotFound        = "KMSNotFoundException"
	errKMSInvalidState    = "KMSInvalidStateException"
	errKMSAccessDenied    = "KMSAccessDeniedException"
	errKMSDisabled        = "KMSDisabledException"
)

// apiError is an error as the wire shows it: an HTTP status and a Kinesis
// exception name. Handlers return it (or a shards error that toAPIError
// maps) and the dispatcher renders it in the request's content type.
type apiError struct {
	Status  int
	Type    string
	Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func newError(status int, typ, format string, args ...any) *apiError {
	return &apiError{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

func invalidArg(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, errInvalidArgument, format, args...)
}

func validation(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, errValidation, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, errResourceNotFound, format, args...)
}

// toAPIError maps any handler error to what the client sees. Store errors
// are matched with errors.Is, never by text.
//
// Choices a Kinesis client depends on:
//   - ErrThrottled and ErrFull become ProvisionedThroughputExceededException:
//     it is the one code every SDK, the KPL and PutRecords entries treat as
//     "not stored, back off and retry". A full stream frees space only as
//     retention or the forwarder drains it, so backing off is the right
//     reaction; the message says which of the two it was.
//   - ErrLimitExceeded (too many shards, scaling too far) is
//     LimitExceededException, as in Kinesis.
//   - ErrClosed (the gateway is stopping) is a 503 ServiceUnavailable so
//     SDKs retry against the restarted gateway; ErrUnavailable (a shard's
//     log failed with a sticky I/O error) is a 500 InternalFailure: retrying
//     does not help until an operator acts.
//   - A stream key that is missing, unusable or replaced is the KMS
//     exception Kinesis gives for the same trouble with a KMS key
//     (KMSNotFound, KMSInvalidState, KMSAccessDenied; KMSDisabled when the
//     gateway has no encryption.keys_dir); an encrypted record that fails
//     authentication (ErrTampered) is damage on disk: InternalFailure.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	switch {
	case errors.Is(err, shards.ErrStreamNotFound), errors.Is(err, shards.ErrShardNotFound),
		errors.Is(err, shards.ErrConsumerNotFound):
		return newError(http.StatusBadRequest, errResourceNotFound, "%s", msg)
	case errors.Is(err, shards.ErrStreamExists), errors.Is(err, shards.ErrConsumerExists),
		errors.Is(err, shards.ErrResourceInUse):
		return newError(http.StatusBadRequest, errResourceInUse, "%s", msg)
	case errors.Is(err, shards.ErrThrottled), errors.Is(err, shards.ErrFull):
		return newError(http.StatusBadRequest, errThroughputExceeded, "%s", msg)
	case errors.Is(err, shards.ErrLimitExceeded):
		return newError(http.StatusBadRequest, errLimitExceeded, "%s", msg)
	case errors.Is(err, shards.ErrKeyNotFound):
		return newError(http.StatusBadRequest, errKMSNotFound, "%s", msg)
	case errors.Is(err, shards.ErrKeyInvalid):
		return newError(http.StatusBadRequest, errKMSInvalidState, "%s", msg)
	case errors.Is(err, shards.ErrKeyMismatch):
		return newError(http.StatusBadRequest, errKMSAccessDenied, "%s", msg)
	case errors.Is(err, shards.ErrEncryptionOff):
		return newError(http.StatusBadRequest, errKMSDisabled, "%s", msg)
	case errors.Is(err, shards.ErrInvalidKey):
		return newError(http.StatusBadRequest, errValidation, "%s", msg)
	case errors.Is(err, shards.ErrInvalidArgument), errors.Is(err, shards.ErrTooLarge),
		errors.Is(err, shards.ErrShardClosed):
		return newError(http.StatusBadRequest, errInvalidArgument, "%s", msg)
	case errors.Is(err, shards.ErrClosed), errors.Is(err, context.Canceled):
		return newError(http.StatusServiceUnavailable, errServiceUnavailable, "%s", msg)
	case errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, errServiceUnavailable, "%s", msg)
	default:
		// ErrUnavailable and anything unexpected (a bug).
		return newError(http.StatusInternalServerError, errInternalFailure, "%s", msg)
	}
}

// entryErrorCode is the PutRecords per-entry ErrorCode for a failed append.
// Kinesis allows only these two values there.
func entryErrorCode(err error) string {
	if errors.Is(err, shards.ErrThrottled) || errors.Is(err, shards.ErrFull) {
		return errThroughputExceeded
	}
	return errInternalFailure
}

// seqParam parses a sequence number parameter used with a shard and answers
// as Kinesis does: ValidationException when it does not match the model's
// pattern, InvalidArgumentException when it is a number but not one of this
// shard (another shard's, or a version 1 number beyond what the shard had
// before the data directory moved to version 2).
func seqParam(member string, info shards.ShardInfo, s string) (uint64, error) {
	if !seqPattern(s) {
		return 0, validation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
			s, lowerFirst(member))
	}
	seq, err := shards.ParseSeq(info, s)
	var se *shards.SeqError
	switch {
	case errors.As(err, &se):
		return 0, invalidArg("Invalid %s. %s.", member, se.Reason)
	case err != nil:
		return 0, invalidArg("Invalid %s. %s is not a sequence number this gateway issued.", member, s)
	}
	return seq, nil
}

// seqPattern is the model's pattern for sequence numbers: 0|([1-9]\d{0,128}).
func seqPattern(s string) bool {
	if s == "" || len(s) > 129 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}
