package shards

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/weir-gateway/weir/internal/fsutil"
	"github.com/weir-gateway/weir/wal"
)

// Version 3 of stream.json (FORMAT.md) keeps all of a stream's records in
// one log, each shard a lane of it, so that one fdatasync commits what
// every shard received together. Versions 1 and 2 kept a log per shard.
//
// A stream written before version 3 is migrated when it opens, without
// copying or renumbering a record (consumers' checkpoints and forwarders'
// watermarks name sequence numbers that must stay valid):
//  1. each shard's own log is opened and sealed: from now on it is only
//     read, and retention deletes it like any other, until it is empty
//     and its directory goes (dropEmptyLegacy);
//  2. the stream's log is created to start after every index any shard
//     has issued (LogStart), so each shard's sequence numbers keep
//     increasing, as they do across a reshard;
//  3. stream.json version 3 records, per shard, the last index of its own
//     log (LegacyLast) and the log's start — the commit point. A crash
//     before it leaves the old map, and the next open removes the
//     half-made log (it never took a record) and migrates again.

// openLogs opens the stream's log and its shards' legacy logs, migrating
// a stream written before version 3, and makes its shards.
func (st *Stream) openLogs() error {
	m := st.meta
	legacy := map[string]*wal.Log{}
	closeAll := func() {
		for _, lg := range legacy {
			lg.Close()
		}
	}
	for _, sm := range m.Shards {
		if m.Version >= 3 && sm.LegacyLast == 0 {
			continue
		}
		dir := filepath.Join(st.dir, sm.ID)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && m.Version >= 3 {
			continue // emptied by retention and removed
		}
		lg, err := wal.Open(dir, st.walOptions(st.name+"/"+sm.ID, sm.StartSeq))
		if err != nil {
			closeAll()
			return fmt.Errorf("shards: stream %s shard %s: %w", st.name, sm.ID, err)
		}
		if err := lg.Seal(); err != nil {
			lg.Close()
			closeAll()
			return fmt.Errorf("shards: stream %s shard %s: %w", st.name, sm.ID, err)
		}
		legacy[sm.ID] = lg
	}
	logDir := filepath.Join(st.dir, logName)
	if m.Version < 3 {
		next, err := st.migrateToLanes(legacy)
		if err != nil {
			closeAll()
			return err
		}
		m = next
	}
	lg, err := wal.Open(logDir, st.walOptions(st.name, max(m.LogStart, 1)))
	if err != nil {
		closeAll()
		return fmt.Errorf("shards: stream %s: %w", st.name, err)
	}
	st.log, st.start, st.meta = lg, max(m.LogStart, 1), m
	for _, sm := range m.Shards {
		info, err := sm.info()
		if err != nil {
			closeAll()
			return fmt.Errorf("shards: stream %s: %w", st.name, err)
		}
		l := legacy[sm.ID]
		if l != nil && l.FirstIndex() > l.LastIndex() {
			l.Close()
			st.removeLegacyDir(sm.ID)
			l = nil
		}
		sh, err := st.newShard(info, l)
		if err != nil {
			closeAll()
			return fmt.Errorf("shards: stream %s shard %s: %w", st.name, info.ID, err)
		}
		st.shards[info.ID] = sh
	}
	return nil
}

// migrateToLanes writes stream.json version 3 for a stream whose shards
// each had a log (legacy, opened and sealed), after removing a log left
// by a migration that crashed before its commit point.
func (st *Stream) migrateToLanes(legacy map[string]*wal.Log) (streamMeta, error) {
	logDir := filepath.Join(st.dir, logName)
	if err := os.RemoveAll(logDir); err != nil {
		return streamMeta{}, err
	}
	next := st.meta
	next.Shards = append([]shardMeta(nil), next.Shards...)
	var top uint64
	for i, sm := range next.Shards {
		last := sm.StartSeq - 1
		if sm.Closed {
			last = max(last, sm.EndSeq)
		}
		if lg := legacy[sm.ID]; lg != nil {
			last = max(last, lg.LastIndex())
			if lg.FirstIndex() <= lg.LastIndex() {
				next.Shards[i].LegacyLast = lg.LastIndex()
			}
		}
		if next.Version == 1 {
			// Sequence numbers of format v1 stay valid up to here.
			next.Shards[i].V1LastSeq = last
		}
		top = max(top, last)
	}
	next.Version, next.LogStart = metaVersion, top+1
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return streamMeta{}, err
	}
	if err := fsutil.SyncDir(st.dir); err != nil {
		return streamMeta{}, err
	}
	if err := writeMeta(st.store.opts.metaFS, st.dir, next); err != nil {
		return streamMeta{}, fmt.Errorf("shards: stream %s: migrate %s to version %d: %w", st.name, metaFile, metaVersion, err)
	}
	st.store.log.Info().Str("stream", st.name).Uint64("log_start", next.LogStart).
		Msgf("%s migrated to version %d: one log for the stream's shards; their own logs are read in place until retention empties them", metaFile, metaVersion)
	return next, nil
}

// dropEmptyLegacy closes and removes the legacy logs that retention has
// emptied.
func (st *Stream) dropEmptyLegacy() {
	st.mu.RLock()
	var empty []*Shard
	for _, sh := range st.shards {
		if lg := sh.legacy.Load(); lg != nil && lg.FirstIndex() > lg.LastIndex() {
			empty = append(empty, sh)
		}
	}
	st.mu.RUnlock()
	for _, sh := range empty {
		st.dropLegacy(sh)
	}
}

// dropLegacy closes a shard's legacy log, if it has one, and removes its
// directory.
func (st *Stream) dropLegacy(sh *Shard) {
	if lg := sh.legacy.Swap(nil); lg != nil {
		lg.Close()
		st.removeLegacyDir(sh.ID())
	}
}

func (st *Stream) removeLegacyDir(id string) {
	if err := os.RemoveAll(filepath.Join(st.dir, id)); err != nil {
		st.store.log.Warn().Err(err).Str("stream", st.name).Str("shard", id).Msg("could not remove an emptied legacy shard log")
		return
	}
	st.store.log.Info().Str("stream", st.name).Str("shard", id).Msg("legacy shard log emptied by retention and removed")
}
