package shards

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weir-gateway/weir/internal/fsutil"
)

// Disk accounting. What a shard costs the card is not the bytes of its
// records: the log preallocates segments whole (so fdatasync need not
// touch metadata), prepares the next one before it is needed, keeps the
// files of up to two deleted segments for reuse, and may keep other files
// (copies of damaged tails) beside them. So a shard's Bytes are the
// blocks allocated to its directory and everything in it, st_blocks × 512
// for each file and directory, the number `du -s -B1` prints; max_bytes,
// /metrics (weir_stream_bytes, weir_shard_bytes) and `weir streams` count
// those. DataBytes are the records alone (segment headers and frames).
//
// Walking a directory costs a system call per file, so the number is
// cached, and walked again when it may have changed: when the shard opens,
// after retention or max_bytes deleted segments, when an append to a
// stream with max_bytes finds the shard's data grown by a quarter segment
// since the last walk (about when the log prepares its next segment or
// rolls), on each retention pass (1 s) that finds the shard's data or
// first record changed, and at least every usageMaxAge (what the log does
// without new data, such as trimming a sealed segment, is seen then).
const usageMaxAge = 10 * time.Second

// usage is a shard's cached disk accounting.
type usage struct {
	mu    sync.Mutex    // one walk at a time
	bytes atomic.Int64  // allocated at the last walk
	data  atomic.Int64  // the log's data bytes then
	first atomic.Uint64 // its first index then
	at    atomic.Int64  // unix nanoseconds of the last walk
}

// Bytes are the bytes allocated on disk to the shard: its segments
// including their preallocated space, a prepared spare segment, the
// directory itself (see usage.go).
func (sh *Shard) Bytes() int64 { return sh.usage.bytes.Load() }

// DataBytes are the bytes of the shard's records as stored: segment
// headers and record frames, without preallocated space.
func (sh *Shard) DataBytes() int64 { return sh.wal().Size() }

// refreshUsage walks the shard's directory again if force is set, or if
// its data changed by slack bytes or more, or its first record changed,
// since the last walk, or that walk is older than usageMaxAge.
func (sh *Shard) refreshUsage(force bool, slack int64) {
	u := &sh.usage
	l := sh.wal()
	now := sh.stream.store.now().UnixNano()
	if !force {
		grown := l.Size() - u.data.Load()
		if grown < slack && -grown < slack && l.FirstIndex() == u.first.Load() && now-u.at.Load() < int64(usageMaxAge) {
			return
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// Read the log's state before the walk: a change during it makes the
	// next check walk again rather than be missed.
	data, first := l.Size(), l.FirstIndex()
	n, err := diskUsage(sh.dir())
	if err != nil {
		// Expired and removed, or unreadable: keep the last good number
		// rather than report a made-up zero; the next check tries again.
		sh.stream.store.log.Warn().Err(err).Str("stream", sh.stream.name).Str("shard", sh.ID()).Msg("could not measure the shard's disk usage")
		return
	}
	u.bytes.Store(n)
	u.data.Store(data)
	u.first.Store(first)
	u.at.Store(now)
}

func (sh *Shard) dir() string { return filepath.Join(sh.stream.dir, sh.ID()) }

// diskUsage returns the bytes allocated to dir and everything under it. A
// file that vanishes during the walk (the log renamed a spare into a
// segment, or retention deleted one) makes it walk again, a few times at
// most.
func diskUsage(dir string) (int64, error) {
	for attempt := 0; ; attempt++ {
		n, err := walkUsage(dir)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return n, err
		}
	}
}

func walkUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += int64(st.Blocks) * 512 // st_blocks counts 512-byte units whatever the block size
		}
		return nil
	})
	return n, err
}

// refreshUsage checks every shard of the stream (see Shard.refreshUsage).
func (st *Stream) refreshUsage(slack int64) {
	st.mu.RLock()
	shards := make([]*Shard, 0, len(st.shards))
	for _, sh := range st.shards {
		shards = append(shards, sh)
	}
	st.mu.RUnlock()
	for _, sh := range shards {
		sh.refreshUsage(false, slack)
	}
}

// Bytes are the bytes allocated on disk to all the stream's shards, the
// number max_bytes caps (see usage.go).
func (st *Stream) Bytes() int64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var n int64
	for _, sh := range st.shards {
		n += sh.Bytes()
	}
	return n
}

// DataBytes are the bytes of the stream's records as stored.
func (st *Stream) DataBytes() int64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var n int64
	for _, sh := range st.shards {
		n += sh.DataBytes()
	}
	return n
}

// DiskSpace is the room left on the filesystem of the data directory.
func (s *Store) DiskSpace() (fsutil.Space, error) { return fsutil.SpaceOf(s.dir) }
