package shards

import (
	"time"

	"github.com/weir-gateway/weir/internal/fsutil"
	"github.com/weir-gateway/weir/wal"
)

// withWALFS makes the store's logs do their file work through fs.
func withWALFS(o Options, fs wal.FS) Options {
	o.walFS = fs
	return o
}

// withMetaFS makes the store's shard maps and checkpoints go through steps.
func withMetaFS(o Options, steps fsutil.Steps) Options {
	o.metaFS = steps
	return o
}

// refreshNow walks the directory of the shard's stream now, whatever changed.
func refreshNow(sh *Shard) { sh.stream.refreshUsage(true, 0) }

// withAutoscaleClock makes the autoscaler read time from clock; tests then
// drive its passes with tick.
func withAutoscaleClock(o AutoscaleOptions, clock func() time.Time) AutoscaleOptions {
	o.clock = clock
	return o
}
