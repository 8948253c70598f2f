package api

import (
	"context"
	"strconv"
	"unicode/utf8"

	"github.com/weir-gateway/weir/shards"
)

// PutRecords request limits, as in Kinesis.
const (
	maxPutRecordsEntries = 500
	maxPutRecordsBytes   = 5 << 20 // data + partition keys
	maxModelRecordBytes  = 10 << 20
)

// checkEntry applies the service-model constraints Kinesis checks before
// anything else (ValidationException), so that PutRecords can refuse a bad
// request whole instead of storing part of it.
func checkEntry(member string, data []byte, key *string, ehk *string) (shards.AppendOptions, error) {
	var o shards.AppendOptions
	if key == nil {
		return o, validation("1 validation error detected: Value null at '%spartitionKey' failed to satisfy constraint: Member must not be null", member)
	}
	if n := utf8.RuneCountInString(*key); n < 1 || n > shards.MaxKeyLen {
		return o, validation("1 validation error detected: Value at '%spartitionKey' failed to satisfy constraint: Member must have length between 1 and %d", member, shards.MaxKeyLen)
	}
	if data == nil {
		return o, validation("1 validation error detected: Value null at '%sdata' failed to satisfy constraint: Member must not be null", member)
	}
	if len(data) > maxModelRecordBytes {
		return o, validation("1 validation error detected: Value at '%sdata' failed to satisfy constraint: Member must have length less than or equal to %d", member, maxModelRecordBytes)
	}
	if ehk != nil {
		h, err := shards.ParseHashKey(*ehk)
		if err != nil {
			return o, invalidArg("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", *ehk)
		}
		o.ExplicitHashKey = &h
	}
	return o, nil
}

func (s *Server) putRecord(ctx context.Context, req *request) (any, error) {
	var in putRecordInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	o, err := checkEntry("", in.Data, in.PartitionKey, in.ExplicitHashKey)
	if err != nil {
		return nil, err
	}
	if in.SequenceNumberForOrdering != nil {
		// Accepted for compatibility: one shard's sequence numbers already
		// increase strictly in commit order, which is what the parameter
		// asks for. Only its form is checked: after a reshard a key's
		// previous number is its parent shard's, which is right to send.
		if _, _, err := shards.DecodeSeq(*in.SequenceNumberForOrdering); err != nil {
			return nil, invalidArg("SequenceNumberForOrdering %q is not a sequence number", *in.SequenceNumberForOrdering)
		}
	}
	name, err := s.named(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	o.Try = true // over the shard's rate: ProvisionedThroughputExceededException at once
	a, err := s.store.Append(ctx, name, &shards.Record{Key: *in.PartitionKey, Data: in.Data}, o)
	if err != nil {
		return nil, notFoundStream(name, s, err)
	}
	return putRecordOutput{ShardId: a.ShardID, SequenceNumber: shards.FormatSeq(a.ShardID, a.Seq), EncryptionType: s.encryptionOf(name)}, nil
}

// putRecords appends a batch through the store's batch path (same limits
// and durability as MQTT). Each entry succeeds or fails on its own, as in
// Kinesis: failed entries carry ProvisionedThroughputExceededException
// (throttled, or stream full) or InternalFailure, and the caller resends
// only those.
func (s *Server) putRecords(ctx context.Context, req *request) (any, error) {
	var in putRecordsInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Records) < 1 || len(in.Records) > maxPutRecordsEntries {
		return nil, validation("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and %d", maxPutRecordsEntries)
	}
	name, err := s.named(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	st, err := s.store.Stream(name)
	if err != nil {
		return nil, notFoundStream(name, s, err)
	}
	maxRecord := st.Config().MaxRecordSize.Bytes()
	recs := make([]*shards.Record, len(in.Records))
	opts := make([]shards.AppendOptions, len(in.Records))
	total := 0
	for i, e := range in.Records {
		member := "records." + strconv.Itoa(i+1) + ".member."
		o, err := checkEntry(member, e.Data, e.PartitionKey, e.ExplicitHashKey)
		if err != nil {
			return nil, err
		}
		// One entry over the stream's record size fails the whole call, as
		// in Kinesis: as a failed entry it would be retried forever.
		if n := int64(len(e.Data) + len(*e.PartitionKey)); n > maxRecord {
			return nil, validation("1 validation error detected: Value at '%sdata' failed to satisfy constraint: Member must have length less than or equal to %d (data and partition key: %d bytes)",
				member, maxRecord, n)
		}
		o.Try = true
		opts[i] = o
		recs[i] = &shards.Record{Key: *e.PartitionKey, Data: e.Data}
		total += len(e.Data) + len(*e.PartitionKey)
	}
	if total > maxPutRecordsBytes {
		return nil, invalidArg("Records size exceeds %d MB limit: %d bytes of data and partition keys", maxPutRecordsBytes>>20, total)
	}
	res, errs := s.store.AppendBatch(ctx, name, recs, opts)
	if err := keyFailure(errs, len(recs)); err != nil {
		return nil, err
	}
	out := putRecordsOutput{Records: make([]putRecordsResultEntry, len(recs)), EncryptionType: s.encryptionOf(name)}
	for i := range recs {
		if i < len(errs) && errs[i] != nil {
			if isNotFound(errs[i]) {
				// The stream was deleted under the batch.
				return nil, notFoundStream(name, s, errs[i])
			}
			out.FailedRecordCount++
			out.Records[i] = putRecordsResultEntry{ErrorCode: entryErrorCode(errs[i]), ErrorMessage: errs[i].Error()}
			continue
		}
		out.Records[i] = putRecordsResultEntry{ShardId: res[i].ShardID, SequenceNumber: shards.FormatSeq(res[i].ShardID, res[i].Seq)}
	}
	s.metrics.putRecords(len(recs)-out.FailedRecordCount, out.FailedRecordCount)
	return out, nil
}
