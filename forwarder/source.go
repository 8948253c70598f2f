package forwarder

import (
	"time"

	"github.com/weir-gateway/weir/shards"
)

// Source is the local stream a forwarder replays. *shards.Stream does not
// satisfy it directly (its Shard returns the concrete type); StoreSource
// adapts a *shards.Store, and tests use an in-memory fake.
type Source interface {
	// Shards lists the stream's shards, parents before children. An error
	// (the stream does not exist yet) pauses forwarding until it does.
	Shards() ([]shards.ShardInfo, error)
	Shard(id string) (ShardReader, error)
}

// ShardReader is the read side of one local shard, as shards.Shard has it.
type ShardReader interface {
	// Read returns committed records with Seq >= from and where to read
	// next (past other shards' records it passed over, even with no
	// record); a *shards.TrimmedError if from is below the trim horizon.
	Read(from uint64, maxRecords, maxBytes int) ([]shards.Record, uint64, error)
	// Changed is closed at the next commit; take it before Read.
	Changed() <-chan struct{}
	TrimHorizon() uint64
	Last() uint64
	// RecordsIn counts the shard's records with sequence numbers in
	// [from, to): its numbers have other shards' records in their gaps.
	RecordsIn(from, to uint64) (uint64, error)
	ArrivalOf(seq uint64) (time.Time, bool)
}

// CheckpointStore keeps the forwarder's low watermark per local shard;
// *shards.Checkpoints satisfies it.
type CheckpointStore interface {
	Commit(stream, consumer, shardID string, seq uint64) error
	Get(stream, consumer string) (map[string]uint64, error)
}

// StoreSource reads stream name from store. The stream is looked up on
// every call, so a forwarder configured before its stream exists starts
// once it is created.
func StoreSource(store *shards.Store, name string) Source { return storeSource{store, name} }

type storeSource struct {
	store *shards.Store
	name  string
}

func (s storeSource) Shards() ([]shards.ShardInfo, error) {
	st, err := s.store.Stream(s.name)
	if err != nil {
		return nil, err
	}
	return st.Shards(), nil
}

func (s storeSource) Shard(id string) (ShardReader, error) {
	st, err := s.store.Stream(s.name)
	if err != nil {
		return nil, err
	}
	return st.Shard(id)
}
