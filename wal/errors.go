package wal

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is. Callers map them to their own
// replies (MQTT reason codes, Kinesis exceptions); never compare messages.
var (
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("wal: log closed")
	// ErrSealed: Seal was called; the log only serves reads.
	ErrSealed = errors.New("wal: log sealed")
	// ErrCompacted: the index is below FirstIndex (its segment was deleted).
	ErrCompacted = errors.New("wal: index compacted")
	// ErrNotFound: the index is above LastIndex (not written or not yet committed).
	ErrNotFound = errors.New("wal: index not found")
	// ErrBusy: AppendAsync found the commit queue full.
	ErrBusy = errors.New("wal: commit queue full")
	// ErrCorrupt: stored bytes fail their checks; see CorruptionError.
	ErrCorrupt = errors.New("wal: corrupt data")
	// ErrFailed: a write or fsync failed earlier. It is sticky because after
	// a failed fsync the kernel may have dropped the dirty pages, so nothing
	// written since the last good sync can be trusted to be on disk.
	ErrFailed = errors.New("wal: log failed")
	// ErrNoSpace: a new segment could not be created for lack of disk space.
	// Nothing of the refused append was written; appends succeed again once
	// space is freed. errors.Is(err, syscall.ENOSPC) also holds.
	ErrNoSpace = errors.New("wal: no space left for a new segment")
	// ErrTooLarge: a payload exceeds MaxRecordSize.
	ErrTooLarge = errors.New("wal: record too large")
)

// CorruptionError says where stored data failed its checks, so an operator
// (or a repair tool) knows which file to look at and from which byte.
type CorruptionError struct {
	Shard   string // Options.Name
	Segment string // path of the segment file
	Offset  int64  // byte offset of the first bad byte, frame or header
	Err     error  // what was wrong
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: shard %q: corrupt segment %s at offset %d: %v", e.Shard, e.Segment, e.Offset, e.Err)
}

// Unwrap exposes the cause (for example errBadCRC or an I/O error).
func (e *CorruptionError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) hold for every CorruptionError.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// Frame-level causes found inside a CorruptionError. Not exported: callers
// branch on ErrCorrupt / CorruptionError, the cause is for people.
var (
	errZeroHeader   = errors.New("zero frame header (end of data)")
	errShortFrame   = errors.New("frame extends past the end of data")
	errBadVersion   = errors.New("unknown frame version or type")
	errBadLength    = errors.New("frame length out of range")
	errBadCRC       = errors.New("frame checksum mismatch")
	errBadSegHeader = errors.New("bad segment header")
	errBadPad       = errors.New("padding frame holds data")
	// errEndAfterPad: the frame after a padding frame fails its checks.
	// A write that pads ends there and carries no end marker, so this is
	// a clean end of the data, as a zero header is.
	errEndAfterPad = fmt.Errorf("%w: the frame after a padding frame is not valid", errZeroHeader)
)
