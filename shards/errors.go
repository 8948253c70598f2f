package shards

import (
	"errors"
	"fmt"
)

// Sentinel errors. Transports map them to their own replies (MQTT reason
// codes, Kinesis exception types) with errors.Is, never by message text.
var (
	ErrStreamNotFound   = errors.New("shards: stream not found")
	ErrStreamExists     = errors.New("shards: stream already exists")
	ErrShardNotFound    = errors.New("shards: shard not found")
	ErrShardClosed      = errors.New("shards: shard is closed")
	ErrThrottled        = errors.New("shards: shard write rate exceeded")
	ErrFull             = errors.New("shards: stream is full")
	ErrTooLarge         = errors.New("shards: record too large")
	ErrInvalidKey       = errors.New("shards: invalid partition key")
	ErrTrimmed          = errors.New("shards: records were trimmed by retention")
	ErrUnavailable      = errors.New("shards: shard unavailable")
	ErrClosed           = errors.New("shards: store closed")
	ErrInvalidArgument  = errors.New("shards: invalid argument")
	ErrConsumerNotFound = errors.New("shards: consumer not found")
	ErrConsumerExists   = errors.New("shards: consumer already exists")
	ErrLimitExceeded    = errors.New("shards: limit exceeded")
	ErrResourceInUse    = errors.New("shards: resource in use")
	// ErrDataDirLocked: another process (a running gateway) holds the
	// data directory's LOCK.
	ErrDataDirLocked = errors.New("shards: data dir is in use by another weir process")
)

// TrimmedError says that a read asked for records that retention has already
// deleted, and how far the data now starts, so a reader can resume at the
// trim horizon and report how much it missed.
type TrimmedError struct {
	Shard       string
	Requested   uint64
	TrimHorizon uint64
	// Lost is how many of the shard's records from Requested on were
	// deleted: exact for whole deleted segments, estimated for the one
	// Requested falls in (sequence numbers have other shards' records in
	// their gaps, so it is not TrimHorizon − Requested).
	Lost uint64
}

func (e *TrimmedError) Error() string {
	return fmt.Sprintf("shards: %s: sequence %d was trimmed; data starts at %d (%d records lost)",
		e.Shard, e.Requested, e.TrimHorizon, e.Lost)
}

// Unwrap lets errors.Is(err, ErrTrimmed) match.
func (e *TrimmedError) Unwrap() error { return ErrTrimmed }
