package shards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weir-gateway/weir/internal/fsutil"
)

// metaFile is the name of a stream's shard map inside its directory.
const metaFile = "stream.json"

// metaVersion is the stream.json format this code writes (FORMAT.md).
// Version 1 and 2 streams (a log per shard) are migrated to version 3 (one
// log per stream, its shards as lanes) when they are opened (migrate.go).
const metaVersion = 3

// streamMeta is a stream's durable shard map. It is rewritten whole and
// atomically on every change, so a crash leaves the map from before or
// after a reshard, never between.
type streamMeta struct {
	Version     int         `json:"version"`
	Name        string      `json:"name"`
	Created     time.Time   `json:"created"`
	NextShard   int         `json:"next_shard"`
	RetentionMS int64       `json:"retention_ms,omitempty"` // set by Increase/DecreaseStreamRetentionPeriod
	Declared    bool        `json:"declared"`               // from the config file, not CreateStream
	Mode        string      `json:"mode,omitempty"`         // "" (provisioned) or on_demand
	MinShards   int         `json:"min_shards,omitempty"`   // on_demand: the autoscaler's floor
	Shards      []shardMeta `json:"shards"`
	// Tags are the stream's AddTagsToStream tags (version 2).
	Tags map[string]string `json:"tags,omitempty"`
	// ShardLevelMetrics are the metrics EnableEnhancedMonitoring turned
	// on (version 2), sorted.
	ShardLevelMetrics []string `json:"shard_level_metrics,omitempty"`
	// EncryptionKeyID is the KeyId new records are encrypted with
	// (StartStreamEncryption); empty = stored in plain text.
	EncryptionKeyID string `json:"encryption_key_id,omitempty"`
	// LogStart is the first index of the stream's log (version 3): 1 for
	// a stream created with one, past every shard's own log for a
	// migrated one.
	LogStart uint64 `json:"log_start,omitempty"`
}

type shardMeta struct {
	ID               string    `json:"id"`
	ParentID         string    `json:"parent,omitempty"`
	AdjacentParentID string    `json:"adjacent_parent,omitempty"`
	StartHash        string    `json:"start_hash"`
	EndHash          string    `json:"end_hash"`
	StartSeq         uint64    `json:"start_seq"`
	EndSeq           uint64    `json:"end_seq,omitempty"`
	Closed           bool      `json:"closed,omitempty"`
	ClosedAt         time.Time `json:"closed_at,omitzero"`
	V1LastSeq        uint64    `json:"v1_last_seq,omitempty"` // version 2: last index issued under sequence format v1
	LegacyLast       uint64    `json:"legacy_last,omitempty"` // version 3: last index of the shard's own log, read in place
}

func (m shardMeta) info() (ShardInfo, error) {
	s, err := ParseHashKey(m.StartHash)
	if err != nil {
		return ShardInfo{}, err
	}
	e, err := ParseHashKey(m.EndHash)
	if err != nil {
		return ShardInfo{}, err
	}
	return ShardInfo{ID: m.ID, ParentID: m.ParentID, AdjacentParentID: m.AdjacentParentID,
		StartHash: s, EndHash: e, StartSeq: m.StartSeq, EndSeq: m.EndSeq, Closed: m.Closed, ClosedAt: m.ClosedAt, V1LastSeq: m.V1LastSeq, LegacyLast: m.LegacyLast}, nil
}

func metaOf(i ShardInfo) shardMeta {
	return shardMeta{ID: i.ID, ParentID: i.ParentID, AdjacentParentID: i.AdjacentParentID,
		StartHash: i.StartHash.String(), EndHash: i.EndHash.String(), StartSeq: i.StartSeq,
		EndSeq: i.EndSeq, Closed: i.Closed, ClosedAt: i.ClosedAt, V1LastSeq: i.V1LastSeq, LegacyLast: i.LegacyLast}
}

func shardID(n int) string { return fmt.Sprintf("shardId-%012d", n) }

func readMeta(dir string) (streamMeta, error) {
	var m streamMeta
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("shards: %s: %w", filepath.Join(dir, metaFile), err)
	}
	if m.Version < 1 || m.Version > metaVersion {
		return m, fmt.Errorf("shards: %s: unknown version %d", filepath.Join(dir, metaFile), m.Version)
	}
	return m, nil
}

func writeMeta(fs fsutil.Steps, dir string, m streamMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileSteps(fs, filepath.Join(dir, metaFile), append(b, '\n'), 0o644)
}

// Kinesis limits on stream tags.
const (
	MaxTags        = 50
	MaxTagKeyLen   = 128
	MaxTagValueLen = 256
)

// ShardLevelMetrics are the metric names EnableEnhancedMonitoring takes
// ("ALL" stands for every one).
var ShardLevelMetrics = []string{"IncomingBytes", "IncomingRecords", "IteratorAgeMilliseconds",
	"OutgoingBytes", "OutgoingRecords", "ReadProvisionedThroughputExceeded", "WriteProvisionedThroughputExceeded"}

// updateMeta applies change to a copy of the stream's map and installs it
// once it is durable. change must not modify what the copy shares with the
// current map (Tags, slices): it replaces them.
func (st *Stream) updateMeta(change func(m *streamMeta) error) error {
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	st.mu.RLock()
	next := st.meta
	st.mu.RUnlock()
	if err := change(&next); err != nil {
		return err
	}
	if err := writeMeta(st.store.opts.metaFS, st.dir, next); err != nil {
		return fmt.Errorf("shards: write shard map of %s: %w", st.name, err)
	}
	st.mu.Lock()
	st.meta = next
	st.mu.Unlock()
	return nil
}

// Tags returns a copy of the stream's tags.
func (st *Stream) Tags() map[string]string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make(map[string]string, len(st.meta.Tags))
	for k, v := range st.meta.Tags {
		out[k] = v
	}
	return out
}

// UpdateTags sets the tags in add (replacing values of existing keys) and
// removes the keys in remove, durably. A stream holds at most MaxTags.
func (st *Stream) UpdateTags(add map[string]string, remove []string) error {
	for k, v := range add {
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKeyLen {
			return fmt.Errorf("%w: tag key %q must have 1-%d characters", ErrInvalidArgument, k, MaxTagKeyLen)
		}
		if utf8.RuneCountInString(v) > MaxTagValueLen {
			return fmt.Errorf("%w: the value of tag %q has more than %d characters", ErrInvalidArgument, k, MaxTagValueLen)
		}
	}
	return st.updateMeta(func(m *streamMeta) error {
		tags := make(map[string]string, len(m.Tags)+len(add))
		for k, v := range m.Tags {
			tags[k] = v
		}
		for k, v := range add {
			tags[k] = v
		}
		for _, k := range remove {
			delete(tags, k)
		}
		if len(tags) > MaxTags {
			return fmt.Errorf("%w: stream %s would have %d tags; a stream has at most %d", ErrLimitExceeded, st.name, len(tags), MaxTags)
		}
		m.Tags = tags
		if len(tags) == 0 {
			m.Tags = nil
		}
		return nil
	})
}

// EnhancedMetrics returns the shard-level metrics enabled on the stream,
// sorted.
func (st *Stream) EnhancedMetrics() []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return append([]string{}, st.meta.ShardLevelMetrics...)
}

// SetEnhancedMetrics enables (on) or disables the named shard-level
// metrics ("ALL" for all) and returns the set before and after, durably.
func (st *Stream) SetEnhancedMetrics(names []string, on bool) (before, after []string, err error) {
	want := map[string]bool{}
	for _, n := range names {
		if n == "ALL" {
			for _, m := range ShardLevelMetrics {
				want[m] = true
			}
			continue
		}
		if !slices.Contains(ShardLevelMetrics, n) {
			return nil, nil, fmt.Errorf("%w: %q is not a shard-level metric (%s, ALL)", ErrInvalidArgument, n, strings.Join(ShardLevelMetrics, ", "))
		}
		want[n] = true
	}
	err = st.updateMeta(func(m *streamMeta) error {
		before = append([]string{}, m.ShardLevelMetrics...)
		set := map[string]bool{}
		for _, n := range m.ShardLevelMetrics {
			set[n] = true
		}
		for n := range want {
			set[n] = on
		}
		after = []string{}
		for _, n := range ShardLevelMetrics {
			if set[n] {
				after = append(after, n)
			}
		}
		m.ShardLevelMetrics = after
		if len(after) == 0 {
			m.ShardLevelMetrics = nil
		}
		return nil
	})
	return before, after, err
}
