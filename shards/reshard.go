package shards

import (
	"errors"
	"fmt"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/internal/fsutil"
)

// MaxOpenShards bounds a stream's open shards; a gateway's disk and file
// handles are finite.
const MaxOpenShards = 1024

// Split closes an open shard and replaces it with two children: one owning
// [start, newStartingHashKey-1] and one owning [newStartingHashKey, end].
func (st *Stream) Split(shardID string, newStartingHashKey HashKey) error {
	st.resharding.Add(1)
	defer st.resharding.Add(-1)
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	return st.splitLocked(shardID, newStartingHashKey)
}

// splitLocked is Split for a caller holding reshardMu.
func (st *Stream) splitLocked(shardID string, newStartingHashKey HashKey) error {
	parent, err := st.openShardByID(shardID)
	if err != nil {
		return err
	}
	pi := parent.Info()
	if newStartingHashKey.Cmp(pi.StartHash) <= 0 || newStartingHashKey.Cmp(pi.EndHash) > 0 {
		return fmt.Errorf("%w: NewStartingHashKey %s is not inside (%s, %s] of %s",
			ErrInvalidArgument, newStartingHashKey, pi.StartHash, pi.EndHash, shardID)
	}
	if len(st.openShards())+1 > MaxOpenShards {
		return fmt.Errorf("%w: stream %s would have more than %d open shards", ErrLimitExceeded, st.name, MaxOpenShards)
	}
	return st.reshard([]*Shard{parent}, []ShardInfo{
		{StartHash: pi.StartHash, EndHash: newStartingHashKey.Sub1(), ParentID: pi.ID},
		{StartHash: newStartingHashKey, EndHash: pi.EndHash, ParentID: pi.ID},
	})
}

// Merge closes two adjacent open shards and replaces them with one child
// owning both ranges.
func (st *Stream) Merge(shardID, adjacentShardID string) error {
	st.resharding.Add(1)
	defer st.resharding.Add(-1)
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	return st.mergeLocked(shardID, adjacentShardID)
}

// mergeLocked is Merge for a caller holding reshardMu.
func (st *Stream) mergeLocked(shardID, adjacentShardID string) error {
	a, err := st.openShardByID(shardID)
	if err != nil {
		return err
	}
	b, err := st.openShardByID(adjacentShardID)
	if err != nil {
		return err
	}
	ai, bi := a.Info(), b.Info()
	lo, hi := ai, bi
	if bi.StartHash.Cmp(ai.StartHash) < 0 {
		lo, hi = bi, ai
	}
	if lo.EndHash.Add1() != hi.StartHash || ai.ID == bi.ID {
		return fmt.Errorf("%w: shards %s and %s are not adjacent", ErrInvalidArgument, shardID, adjacentShardID)
	}
	return st.reshard([]*Shard{a, b}, []ShardInfo{
		{StartHash: lo.StartHash, EndHash: hi.EndHash, ParentID: ai.ID, AdjacentParentID: bi.ID},
	})
}

// UpdateShardCount scales the stream uniformly to target open shards by a
// series of splits and merges, as Kinesis does, so that every child has at
// most two parents and readers can keep reading parents first. Like
// Kinesis it refuses to more than double or halve the count in one call.
func (st *Stream) UpdateShardCount(target int) error {
	st.resharding.Add(1)
	defer st.resharding.Add(-1)
	cur := len(st.openShards())
	if target < 1 || target > MaxOpenShards {
		return fmt.Errorf("%w: target shard count %d is not in [1, %d]", ErrInvalidArgument, target, MaxOpenShards)
	}
	if target > 2*cur || 2*target < cur {
		return fmt.Errorf("%w: cannot scale from %d to %d shards in one call (at most double or half)", ErrLimitExceeded, cur, target)
	}
	want := EvenRanges(target)
	// Split wherever a target boundary falls inside an open shard.
	for _, r := range want[1:] {
		b := r[0]
		for _, sh := range st.openShards() {
			i := sh.Info()
			if b.Cmp(i.StartHash) > 0 && b.Cmp(i.EndHash) <= 0 {
				if err := st.Split(i.ID, b); err != nil {
					return err
				}
				break
			}
		}
	}
	// Merge neighbours that now sit inside the same target range.
	for _, r := range want {
		for {
			var inside []ShardInfo
			for _, sh := range st.openShards() {
				i := sh.Info()
				if i.StartHash.Cmp(r[0]) >= 0 && i.EndHash.Cmp(r[1]) <= 0 {
					inside = append(inside, i)
				}
			}
			if len(inside) <= 1 {
				break
			}
			if err := st.Merge(inside[0].ID, inside[1].ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetRetention changes how long the stream keeps records and persists it.
func (st *Stream) SetRetention(d time.Duration) error {
	if d < time.Second || d > 8760*time.Hour {
		return fmt.Errorf("%w: retention %v is not in [1s, 8760h]", ErrInvalidArgument, d)
	}
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	st.mu.RLock()
	next := st.meta
	st.mu.RUnlock()
	next.RetentionMS = d.Milliseconds()
	if err := writeMeta(st.store.opts.metaFS, st.dir, next); err != nil {
		return fmt.Errorf("shards: set retention of %s: %w", st.name, err)
	}
	st.mu.Lock()
	st.meta = next
	st.cfg.Retention = conf.Duration(d)
	st.mu.Unlock()
	return nil
}

func (st *Stream) openShards() []*Shard {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return append([]*Shard(nil), st.open...)
}

func (st *Stream) openShardByID(id string) (*Shard, error) {
	sh, err := st.Shard(id)
	if err != nil {
		return nil, err
	}
	if sh.Info().Closed {
		return nil, fmt.Errorf("%w: %s is closed", ErrShardClosed, id)
	}
	return sh, nil
}

// reshard closes parents and opens children. The order makes every crash
// point recoverable:
//  1. seal the parents' lanes: in-flight commits finish, later writes get
//     wal.ErrSealed and wait for the new map; the log's index at the seal
//     ends each parent;
//  2. write the new shard map atomically — the commit point;
//  3. install it in memory, waking the waiting writers, who go to a child
//     (a new lane of the same log).
//
// A crash before 2 reopens the parents as open shards; after it the
// parents reopen closed and the children exist.
func (st *Stream) reshard(parents []*Shard, children []ShardInfo) error {
	var endSeq uint64
	now := st.store.now().UTC()
	closed := map[string]uint64{}
	for _, p := range parents {
		end, err := p.lane.Seal()
		if err != nil {
			st.unseal(parents)
			return fmt.Errorf("%w: seal %s: %w", ErrUnavailable, p.ID(), err)
		}
		end = max(end, p.Last())
		closed[p.ID()] = end
		endSeq = max(endSeq, end)
	}
	st.mu.RLock()
	next := st.meta
	st.mu.RUnlock()
	next.Shards = append([]shardMeta(nil), next.Shards...)
	for i, sm := range next.Shards {
		if end, ok := closed[sm.ID]; ok {
			next.Shards[i].Closed, next.Shards[i].EndSeq, next.Shards[i].ClosedAt = true, end, now
		}
	}
	added := map[string]*Shard{}
	for _, c := range children {
		c.ID = shardID(next.NextShard)
		next.NextShard++
		// Children number their records after every parent's last, so a
		// key's sequence numbers keep increasing across the reshard.
		c.StartSeq = endSeq + 1
		sh, err := st.newShard(c, nil)
		if err != nil {
			st.unseal(parents)
			return fmt.Errorf("shards: create child %s: %w", c.ID, err)
		}
		added[c.ID] = sh
		next.Shards = append(next.Shards, metaOf(c))
	}
	if err := writeMeta(st.store.opts.metaFS, st.dir, next); err != nil {
		var dse *fsutil.DirSyncError
		if errors.As(err, &dse) {
			st.install(next, added, nil)
			st.store.log.Error().Err(err).Str("stream", st.name).Msg("new shard map written but its directory could not be synced; a power cut may bring back the old map")
			return fmt.Errorf("shards: write shard map of %s: %w", st.name, err)
		}
		st.unseal(parents)
		return fmt.Errorf("shards: write shard map of %s: %w", st.name, err)
	}
	st.install(next, added, nil)
	ids := make([]string, 0, len(added))
	for id := range added {
		ids = append(ids, id)
	}
	st.store.log.Info().Str("stream", st.name).Int("parents", len(parents)).Strs("children", ids).
		Uint64("end_seq", endSeq).Msg("resharded")
	return nil
}

// unseal gives back the parents of a reshard that failed before its
// commit point, so they take writes again.
func (st *Stream) unseal(parents []*Shard) {
	for _, p := range parents {
		if err := p.lane.Unseal(); err != nil {
			st.store.log.Error().Err(err).Str("shard", p.ID()).Msg("could not reopen shard after a failed reshard")
		}
	}
	st.mu.Lock()
	close(st.mapCh)
	st.mapCh = make(chan struct{})
	st.mu.Unlock()
}
