package shards

import (
	"regexp"
	"strings"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/wal"
)

// Config limits. Retention and segment bounds come from issue 3 (short
// windows and tiny segments are allowed so that tests and small edge disks
// can use them); the record limit matches Kinesis' 1 MiB with room for an
// operator who controls both ends to go up to 10 MiB.
const (
	MinShards        = 1
	MaxShards        = 1024
	MinRetention     = conf.Duration(time.Second)
	MaxRetention     = conf.Duration(8760 * time.Hour)
	MinSegmentSize   = 4 * conf.KiB
	MaxSegmentSize   = conf.GiB
	MaxMaxRecordSize = 10 * conf.MiB
	// SegmentHeadroom is what a segment must hold beyond one record of
	// max_record_size: the frame, sequence number, arrival time, topic,
	// client id and user properties stored with the data. A record that
	// does not fit in one segment would make segment-sized retention and
	// size accounting meaningless.
	SegmentHeadroom = conf.KiB
)

// Value sets for the enum keys.
const (
	OnFullReject      = "reject"
	OnFullDropOldest  = "drop_oldest"
	OnLimitBackpress  = "backpressure"
	OnLimitReject     = "reject"
	FsyncAlways       = "always"
	FsyncInterval     = "interval"
	DefaultStreamName = "telemetry"
)

// streamNameRE is the Kinesis StreamName pattern; names reach the Kinesis
// API unchanged, so anything else would be unreachable from AWS clients.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// StreamConfig is one entry of the `streams:` list.
type StreamConfig struct {
	Name          string        `yaml:"name"`
	Shards        int           `yaml:"shards"`
	MaxRecordSize conf.ByteSize `yaml:"max_record_size"` // data + partition key
	Retention     conf.Duration `yaml:"retention"`
	SegmentSize   conf.ByteSize `yaml:"segment_size"`
	MaxBytes      conf.ByteSize `yaml:"max_bytes"` // 0 = unlimited
	OnFull        string        `yaml:"on_full"`
	Rate          RateConfig    `yaml:"rate"`
	// Mode is provisioned or on_demand; "" keeps the mode the stream has
	// (provisioned for a new one). See mode.go.
	Mode     string         `yaml:"mode"`
	OnDemand OnDemandConfig `yaml:"on_demand"`
}

// RateConfig is the per-shard write limit of a stream. Zero rates mean
// unlimited.
type RateConfig struct {
	RecordsPerSec int           `yaml:"records_per_sec"`
	BytesPerSec   conf.ByteSize `yaml:"bytes_per_sec"`
	OnLimit       string        `yaml:"on_limit"`
	MaxWait       conf.Duration `yaml:"max_wait"`
}

// Durability says when an append counts as stored.
type Durability struct {
	Fsync    string        `yaml:"fsync"`
	Interval conf.Duration `yaml:"interval"`
	// CommitDelay (fsync: always) lets a stream's committer wait this long
	// for more publishes before an fsync while many devices publish at
	// once; a lone device never waits. It trades at most this much
	// latency for fewer fsyncs. 0 turns it off.
	CommitDelay conf.Duration `yaml:"commit_delay"`
}

// DefaultCommitDelay is durability.commit_delay when the file does not set
// it (see BENCHMARKS.md for what it buys). The zero Durability keeps it off,
// since 0 is a valid setting.
const DefaultCommitDelay = conf.Duration(time.Millisecond)

// MaxCommitDelay bounds durability.commit_delay: past it, waiting costs
// more latency than it saves in fsyncs.
const MaxCommitDelay = conf.Duration(10 * time.Millisecond)

// ValidStreamName reports whether name is a legal Kinesis stream name.
func ValidStreamName(name string) bool { return streamNameRE.MatchString(name) }

// Defaults fills the fields whose zero value is not a valid setting, so
// that it never overrides a meaningful zero (max_bytes: 0 = unlimited).
// Name has no default.
func (c *StreamConfig) Defaults() {
	if c.Shards == 0 {
		c.Shards = 4
	}
	if c.MaxRecordSize == 0 {
		c.MaxRecordSize = conf.MiB
	}
	if c.Retention == 0 {
		c.Retention = conf.Duration(24 * time.Hour)
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = 16 * conf.MiB
	}
	if c.OnFull == "" {
		c.OnFull = OnFullReject
	}
	c.Rate.Defaults()
	c.OnDemand.Defaults()
}

// WithDefaults returns a copy of c with Defaults applied.
func (c StreamConfig) WithDefaults() StreamConfig {
	c.Defaults()
	return c
}

// Defaults fills a RateConfig. Because 0 means unlimited, the Kinesis
// limits (1000 records/s, 1 MiB/s per shard) are applied only to an
// all-zero RateConfig, i.e. one nobody set; otherwise only on_limit and
// max_wait are filled.
func (r *RateConfig) Defaults() {
	if *r == (RateConfig{}) {
		r.RecordsPerSec = 1000
		r.BytesPerSec = conf.MiB
	}
	if r.OnLimit == "" {
		r.OnLimit = OnLimitBackpress
	}
	if r.MaxWait == 0 {
		r.MaxWait = conf.Duration(2 * time.Second)
	}
}

// WithDefaults returns a copy of r with Defaults applied.
func (r RateConfig) WithDefaults() RateConfig {
	r.Defaults()
	return r
}

// Defaults fills fsync (always) and interval (10ms).
func (d *Durability) Defaults() {
	if d.Fsync == "" {
		d.Fsync = FsyncAlways
	}
	if d.Interval == 0 {
		d.Interval = conf.Duration(10 * time.Millisecond)
	}
}

// WithDefaults returns a copy of d with Defaults applied.
func (d Durability) WithDefaults() Durability {
	d.Defaults()
	return d
}

// logSegments are the segment files a stream's log may hold besides its
// sealed ones: the one being written, the next one prepared, and the
// deleted ones it keeps for reuse. max_bytes counts allocated space
// (usage.go) and frees a sealed segment at a time, so a cap below that
// plus one segment could never store anything. The shards share the log,
// so their number does not matter.
const logSegments = 2 + wal.DefaultRecycleSegments

// Validate checks one stream on its own; uniqueness of names is checked by
// whoever holds the list. Paths are relative to the stream.
func (c StreamConfig) Validate() []error {
	var errs conf.ErrorList
	if !ValidStreamName(c.Name) {
		if c.Name == "" {
			errs.Add("name", "must not be empty")
		} else {
			errs.Add("name", "%q is not a valid stream name: use 1..128 characters from a-z A-Z 0-9 _ . -", c.Name)
		}
	}
	if c.Shards < MinShards || c.Shards > MaxShards {
		errs.Add("shards", "must be %d..%d, got %d", MinShards, MaxShards, c.Shards)
	}
	if c.Retention < MinRetention || c.Retention > MaxRetention {
		errs.Add("retention", "must be %v..%v, got %v", MinRetention, MaxRetention, c.Retention)
	}
	segOK := c.SegmentSize >= MinSegmentSize && c.SegmentSize <= MaxSegmentSize
	if !segOK {
		errs.Add("segment_size", "must be %v..%v, got %v", MinSegmentSize, MaxSegmentSize, c.SegmentSize)
	}
	switch {
	case c.MaxRecordSize < 1 || c.MaxRecordSize > MaxMaxRecordSize:
		errs.Add("max_record_size", "must be 1B..%v, got %v", MaxMaxRecordSize, c.MaxRecordSize)
	case segOK && c.MaxRecordSize > c.SegmentSize-SegmentHeadroom:
		errs.Add("max_record_size", "(%v) must leave %v of headroom in segment_size (%v): raise segment_size to at least %v or lower max_record_size",
			c.MaxRecordSize, SegmentHeadroom, c.SegmentSize, c.MaxRecordSize+SegmentHeadroom)
	}
	if c.MaxBytes < 0 {
		errs.Add("max_bytes", "must not be negative")
	} else if least := conf.ByteSize(logSegments+1) * c.SegmentSize; segOK && c.MaxBytes != 0 && c.MaxBytes < least {
		errs.Add("max_bytes", "(%v) must be 0 (unlimited) or at least %d × segment_size = %v: it counts space allocated on disk, where the stream's log keeps its segment being written, the next one prepared and up to %d deleted ones for reuse, and space is freed a whole segment at a time",
			c.MaxBytes, logSegments+1, least, wal.DefaultRecycleSegments)
	}
	errs.Enum("on_full", c.OnFull, OnFullReject, OnFullDropOldest)
	errs.Nest("rate", c.Rate.Validate())
	c.validateMode(&errs)
	return errs
}

// Validate checks a RateConfig; paths are relative to it.
func (r RateConfig) Validate() []error {
	var errs conf.ErrorList
	if r.RecordsPerSec < 0 {
		errs.Add("records_per_sec", "must be >= 0 (0 = unlimited), got %d", r.RecordsPerSec)
	}
	if r.BytesPerSec < 0 {
		errs.Add("bytes_per_sec", "must be >= 0 (0 = unlimited), got %v", r.BytesPerSec)
	}
	errs.Enum("on_limit", r.OnLimit, OnLimitBackpress, OnLimitReject)
	if r.MaxWait < 0 {
		errs.Add("max_wait", "must not be negative")
	} else if r.OnLimit == OnLimitBackpress && r.MaxWait == 0 {
		errs.Add("max_wait", "must be > 0 when on_limit is backpressure")
	}
	return errs
}

// Validate checks a Durability; paths are relative to it.
func (d Durability) Validate() []error {
	var errs conf.ErrorList
	errs.Enum("fsync", d.Fsync, FsyncAlways, FsyncInterval)
	if d.Fsync == FsyncInterval && d.Interval <= 0 {
		errs.Add("interval", "must be > 0 when fsync is interval, got %v", d.Interval)
	}
	if d.Interval < 0 {
		if d.Fsync != FsyncInterval {
			errs.Add("interval", "must not be negative")
		}
	}
	if d.CommitDelay < 0 || d.CommitDelay > MaxCommitDelay {
		errs.Add("commit_delay", "must be 0..%v, got %v", MaxCommitDelay, d.CommitDelay)
	}
	return errs
}

// EncryptionConfig is the `encryption:` section: where the keys of
// StartStreamEncryption live (ENCRYPTION.md).
type EncryptionConfig struct {
	// KeysDir holds one key file per KeyId; "" = stream encryption off.
	// Keep it off the medium that holds data_dir, or encryption protects
	// nothing when that medium is stolen.
	KeysDir string `yaml:"keys_dir"`
}

// Validate checks the section; whether the directory exists and is safe
// is checked when the store opens.
func (c EncryptionConfig) Validate() []error {
	var errs conf.ErrorList
	if c.KeysDir != "" && strings.TrimSpace(c.KeysDir) != c.KeysDir {
		errs.Add("keys_dir", "has leading or trailing spaces: %q", c.KeysDir)
	}
	return errs
}
