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

// Disk accounting. What a stream costs the card is not the bytes of its
// records: its log preallocates segments whole (so fdatasync need not
// touch metadata), prepares the next one before it is needed, keeps the
// files of up to two deleted segments for reuse, and may keep other files
// (copies of damaged tails) beside them. So a stream's Bytes are the
// blocks allocated to its directory and everything in it (its log, its
// shards' legacy logs, its shard map), st_blocks × 512 for each file and
// directory, the number `du -s -B1` prints; max_bytes, /metrics
// (weir_stream_bytes) and `weir streams` count those. A shard's Bytes are
// its share of them, by its share of the records' bytes (DataBytes: frames
// and segment headers), since its records share segments with the other
// shards'.
//
// Walking a directory costs a system call per file, so the number is
// cached, and walked again when it may have changed: when the stream
// opens, after retention or max_bytes deleted segments, when an append to
// a stream with max_bytes finds its data grown by a quarter segment since
// the last walk (about when the log prepares its next segment or rolls),
// on each retention pass (1 s) that finds its data or first record
// changed, and at least every usageMaxAge (what the log does without new
// data, such as trimming a sealed segment, is seen then).
const usageMaxAge = 10 * time.Second

// usage is a stream's cached disk accounting.
type usage struct {
	mu    sync.Mutex    // one walk at a time
	bytes atomic.Int64  // allocated at the last walk
	data  atomic.Int64  // the logs' data bytes then
	first atomic.Uint64 // the log's first index then
	at    atomic.Int64  // unix nanoseconds of the last walk
}

// Bytes are the bytes allocated on disk to the shard: its share of its
// stream's (see usage.go).
func (sh *Shard) Bytes() int64 {
	data := sh.stream.DataBytes()
	if data <= 0 {
		return 0
	}
	return int64(float64(sh.stream.Bytes()) * float64(sh.DataBytes()) / float64(data))
}

// DataBytes are the bytes of the shard's records as stored: their frames,
// headers included, in the stream's log and in its legacy log.
func (sh *Shard) DataBytes() int64 {
	_, _, _, n, _ := sh.lane.Stored()
	if lg := sh.legacy.Load(); lg != nil {
		n += lg.Size()
	}
	return n
}

// refreshUsage walks the stream's directory again if force is set, or if
// its data changed by slack bytes or more, or its first record changed,
// since the last walk, or that walk is older than usageMaxAge.
func (st *Stream) refreshUsage(force bool, slack int64) {
	u := &st.usage
	now := st.store.now().UnixNano()
	if !force {
		grown := st.DataBytes() - u.data.Load()
		if grown < slack && -grown < slack && st.log.FirstIndex() == u.first.Load() && now-u.at.Load() < int64(usageMaxAge) {
			return
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// Read the logs' state before the walk: a change during it makes the
	// next check walk again rather than be missed.
	data, first := st.DataBytes(), st.log.FirstIndex()
	n, err := diskUsage(st.dir)
	if err != nil {
		// Deleted, or unreadable: keep the last good number rather than
		// report a made-up zero; the next check tries again.
		st.store.log.Warn().Err(err).Str("stream", st.name).Msg("could not measure the stream's disk usage")
		return
	}
	u.bytes.Store(n)
	u.data.Store(data)
	u.first.Store(first)
	u.at.Store(now)
}

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

// Bytes are the bytes allocated on disk to the stream, the number
// max_bytes caps (see usage.go).
func (st *Stream) Bytes() int64 { return st.usage.bytes.Load() }

// DataBytes are the bytes of the stream's records as stored.
func (st *Stream) DataBytes() int64 {
	n := st.log.Size()
	st.mu.RLock()
	defer st.mu.RUnlock()
	for _, sh := range st.shards {
		if lg := sh.legacy.Load(); lg != nil {
			n += lg.Size()
		}
	}
	return n
}

// DiskSpace is the room left on the filesystem of the data directory.
func (s *Store) DiskSpace() (fsutil.Space, error) { return fsutil.SpaceOf(s.dir) }
