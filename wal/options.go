package wal

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// SyncMode says when an append is acknowledged.
type SyncMode int

const (
	// SyncAlways acknowledges an append only after fdatasync returned for
	// the write that carried it: an acknowledged record survives power loss.
	SyncAlways SyncMode = iota
	// SyncInterval acknowledges after write(2); a background fdatasync runs
	// every SyncInterval. A power cut can lose what was acknowledged in the
	// last SyncInterval plus the duration of one fdatasync. A process crash
	// (kill -9) loses nothing: the data is in the page cache.
	SyncInterval
)

func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// Limits and defaults.
const (
	DefaultSegmentSize   = 16 << 20
	MinSegmentSize       = 4 << 10
	MaxSegmentSize       = 1 << 30
	DefaultSyncInterval  = 10 * time.Millisecond
	DefaultMaxBatchBytes = 4 << 20
	// MaxRecordSize bounds one payload. It keeps a corrupt length field from
	// making the reader allocate gigabytes.
	MaxRecordSize = 64 << 20
	// queueLen is how many appends may wait for the committer. Blocking
	// appends wait for room; AppendAsync gets ErrBusy.
	queueLen = 4096
)

// Options configure a Log. The zero value is usable: 16 MiB segments,
// SyncAlways, real files, no logging.
type Options struct {
	Name          string        // shard id, used in errors and logs
	SegmentSize   int64         // roll threshold; default 16 MiB; 4 KiB..1 GiB
	Sync          SyncMode      // when appends are acknowledged
	SyncInterval  time.Duration // for SyncInterval; default 10ms
	FirstIndex    uint64        // index of the first record of a NEW log (default 1); ignored if data exists
	FS            FS            // nil = real OS files
	Logger        zerolog.Logger
	MaxBatchBytes int // the committer gathers up to this many bytes per write (default 4 MiB)
	// CommitDelay (SyncAlways only) is how long the committer waits for
	// more appends before a sync, and only while appends are arriving
	// concurrently (the previous group held more than one). Each fdatasync
	// costs tens of microseconds of CPU besides its wait; on a small board
	// saturated by many connections, fewer and larger groups leave that CPU
	// to the broker. A lone appender never waits. Zero disables it.
	CommitDelay time.Duration
	// Metrics, if set, receives the fdatasync latency and commit group
	// sizes (shared by every log of a store).
	Metrics *Metrics
	// Tag, if set, gives a record's tag (for example its arrival time):
	// each segment keeps the smallest and largest, and a sealed segment's
	// footer stores them, so the owner finds records by tag (retention,
	// AT_TIMESTAMP) without reading them. Called on the committer for
	// every record, and on Open for the records of the newest segment and
	// of version 1 segments: it must be cheap and must not retain payload.
	Tag TagFunc
	// RecycleSegments is how many files of segments deleted by
	// TruncateFront are kept to become the next segments, instead of
	// zero-filling new files (default 2; negative: none).
	RecycleSegments int
	// PageSize (SyncAlways only) is the flash page a sync should write
	// whole, once: a group that ends less than its own size short of a
	// page boundary is padded to it (FORMAT.md, "Padding"), so the next
	// group starts on a fresh page instead of rewriting this one.
	// Default 4096, the page the kernel writes back; negative: never pad.
	PageSize int64
	// ScrubRate is how many bytes per second the background scrub reads
	// to verify sealed segments that Open trusted by their footer
	// (default 8 MiB/s; negative: no background scrub).
	ScrubRate int64
}

// TagFunc returns a record's tag, or false if the record has none.
type TagFunc func(payload []byte) (tag uint64, ok bool)

// Defaults of the storage version 2 options.
const (
	DefaultRecycleSegments = 2
	DefaultScrubRate       = 8 << 20
	DefaultPageSize        = 4096
)

func (o Options) withDefaults() (Options, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < MinSegmentSize || o.SegmentSize > MaxSegmentSize {
		return o, fmt.Errorf("wal: shard %q: segment size %d outside %d..%d", o.Name, o.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	if o.Sync != SyncAlways && o.Sync != SyncInterval {
		return o, fmt.Errorf("wal: shard %q: unknown sync mode %d", o.Name, int(o.Sync))
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.FirstIndex == 0 {
		o.FirstIndex = 1
	}
	if o.FS == nil {
		o.FS = OSFS()
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	switch {
	case o.RecycleSegments == 0:
		o.RecycleSegments = DefaultRecycleSegments
	case o.RecycleSegments < 0:
		o.RecycleSegments = 0
	}
	if o.ScrubRate == 0 {
		o.ScrubRate = DefaultScrubRate
	}
	switch {
	case o.PageSize == 0:
		o.PageSize = DefaultPageSize
	case o.PageSize < 0:
		o.PageSize = 0
	}
	return o, nil
}
