package api

import (
	"context"
	"errors"

	"github.com/weir-gateway/weir/shards"
)

const (
	encryptionKMS  = "KMS"
	encryptionNone = "NONE"
)

type streamEncryptionInput struct {
	streamRef
	EncryptionType *string `json:"EncryptionType"`
	KeyId          *string `json:"KeyId"`
}

// encryptionType is what DescribeStream and PutRecord(s) report for st.
func encryptionType(st *shards.Stream) string {
	if st.Encryption() != "" {
		return encryptionKMS
	}
	return encryptionNone
}

// checkEncryptionInput applies the model's constraints, as Kinesis does
// before anything else: both members present, the type one of the enum,
// the key id 1..2048 characters.
func checkEncryptionInput(in streamEncryptionInput) error {
	if in.EncryptionType == nil {
		return validation("1 validation error detected: Value null at 'encryptionType' failed to satisfy constraint: Member must not be null")
	}
	if t := *in.EncryptionType; t != encryptionKMS && t != encryptionNone {
		return validation("1 validation error detected: Value '%s' at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: [KMS, NONE]", t)
	}
	if in.KeyId == nil {
		return validation("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	if n := len(*in.KeyId); n < 1 || n > 2048 {
		return validation("1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length between 1 and 2048")
	}
	if *in.EncryptionType != encryptionKMS {
		return invalidArg("EncryptionType must be KMS; weir encrypts with the local key file the KeyId names (encryption.keys_dir)")
	}
	return nil
}

// startStreamEncryption encrypts the stream's records from now on with the
// key file KeyId names; on an encrypted stream it switches keys. Records
// already stored stay as they were, as in Kinesis. The change is durable
// and in force when the call returns (the stream never shows UPDATING).
func (s *Server) startStreamEncryption(_ context.Context, req *request) (any, error) {
	return s.changeEncryption(req, (*shards.Stream).StartEncryption)
}

// stopStreamEncryption stores the stream's records from now on in plain
// text. KeyId must be the stream's current key; on a stream that is not
// encrypted the call does nothing.
func (s *Server) stopStreamEncryption(_ context.Context, req *request) (any, error) {
	return s.changeEncryption(req, (*shards.Stream).StopEncryption)
}

// changeEncryption is Start/StopStreamEncryption: the same input, checks
// and answer around the stream's own change.
func (s *Server) changeEncryption(req *request, change func(*shards.Stream, string) error) (any, error) {
	var in streamEncryptionInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if err := checkEncryptionInput(in); err != nil {
		return nil, err
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	if err := change(st, *in.KeyId); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// encryptionOf is the EncryptionType PutRecord(s) report for a stream.
func (s *Server) encryptionOf(name string) string {
	st, err := s.store.Stream(name)
	if err != nil {
		return encryptionNone
	}
	return encryptionType(st)
}

// keyFailure returns the error of a PutRecords batch that failed as a
// whole because the stream's key is unusable: Kinesis answers that with a
// KMS exception for the request, not with per-entry codes (which allow
// only throughput and InternalFailure, and a producer would resend the
// entries forever). A batch that stored any record answers per entry.
func keyFailure(errs []error, n int) error {
	var first error
	for i := range n {
		if i >= len(errs) || errs[i] == nil {
			return nil
		}
		var ke *shards.KeyError
		if first == nil && errors.As(errs[i], &ke) {
			first = errs[i]
		}
	}
	return first
}
