package shards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/weir-gateway/weir/internal/fsutil"
)

// metaFile is the name of a stream's shard map inside its directory.
const metaFile = "stream.json"

// metaVersion is the stream.json format this code writes (FORMAT.md).
// Version 1 files are read and rewritten as version 2 when their stream
// is opened (migrateV1).
const metaVersion = 2

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
	Shards      []shardMeta `json:"shards"`
	// Tags are the stream's AddTagsToStream tags (version 2).
	Tags map[string]string `json:"tags,omitempty"`
	// ShardLevelMetrics are the metrics EnableEnhancedMonitoring turned
	// on (version 2), sorted.
	ShardLevelMetrics []string `json:"shard_level_metrics,omitempty"`
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
		StartHash: s, EndHash: e, StartSeq: m.StartSeq, EndSeq: m.EndSeq, Closed: m.Closed, ClosedAt: m.ClosedAt, V1LastSeq: m.V1LastSeq}, nil
}

func metaOf(i ShardInfo) shardMeta {
	return shardMeta{ID: i.ID, ParentID: i.ParentID, AdjacentParentID: i.AdjacentParentID,
		StartHash: i.StartHash.String(), EndHash: i.EndHash.String(), StartSeq: i.StartSeq,
		EndSeq: i.EndSeq, Closed: i.Closed, ClosedAt: i.ClosedAt, V1LastSeq: i.V1LastSeq}
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
	if m.Version != 1 && m.Version != metaVersion {
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
