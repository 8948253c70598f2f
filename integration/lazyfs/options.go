package lazyfs

import "log"

// Options tune Mount. The zero value is ready to use.
type Options struct {
	// Logger receives one line per power cut and any inconsistency found
	// while rolling back. Nil discards them.
	Logger *log.Logger
	// Debug logs every FUSE request (go-fuse's debug output) to Logger.
	Debug bool
	// StashDir keeps removed files and directories until they can no
	// longer come back. It must be on the backing directory's filesystem
	// and is emptied on Unmount. Default: a new directory next to backing.
	StashDir string
	// SyncBacking forwards fsync/fdatasync to the backing files. The
	// simulation does not need it (durability is decided by lazyfs's own
	// bookkeeping), and without it a sync costs microseconds, not a disk
	// flush; set it to measure with real flush latency.
	SyncBacking bool
}

// Stats counts what the FS saw since Mount. Counters never reset.
type Stats struct {
	Writes        uint64 // FUSE write requests (each ≤ 1 MiB)
	BytesWritten  uint64
	Syncs         uint64 // fsync + fdatasync on files
	DataSyncs     uint64 // of Syncs, the fdatasync ones
	DirSyncs      uint64 // fsync on directories (FUSE FSYNCDIR)
	Cuts          uint64 // successful PowerCut calls
	BytesUndone   uint64 // bytes cut beyond durable sizes + bytes restored from undo logs
	EntriesUndone uint64 // directory entries removed or restored by cuts (a moved entry counts twice)
}
