package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Log is one shard's write-ahead log: a directory of segment files.
// All methods are safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	fs   FS
	log  zerolog.Logger

	// mu guards what readers see: the segment list and each segment's
	// committed count, end and offsets. The committer takes it for writing
	// only to publish a commit; readers hold it only to look up a segment.
	mu     sync.RWMutex
	segs   []*segment
	notify chan struct{} // created on demand by Notify, closed at the next commit
	// laneWait holds Lane.Notify's channels, each closed when a record of
	// its lane becomes visible; dirty are the lanes with records written
	// but not yet visible (SyncInterval shows them later).
	laneWait map[uint16]chan struct{}
	dirty    []dirtyLane
	// pub is the last index whose segment bookkeeping is published:
	// records are shown to readers only up to it, so a reader never asks
	// a segment for a record its count does not include yet.
	pub uint64

	first   atomic.Uint64
	last    atomic.Uint64
	closed  atomic.Bool
	failure atomic.Pointer[error] // sticky ErrFailed

	// sendMu orders enqueueing against Seal and Close: once state leaves
	// stateOpen under the write lock, no request can slip into the queue
	// behind the final drain.
	sendMu sync.RWMutex
	state  int
	queue  chan *request
	quit   chan struct{} // closed by Close: the committer drains and exits
	done   chan struct{} // closed when the committer has exited

	w      writer // owned by the committer goroutine
	linger linger // how appenders wake a lingering committer (committer.go)

	bg       sync.WaitGroup
	bgQuit   chan struct{}
	kick     chan struct{}    // asks the preparer for a spare segment
	spares   chan spareResult // the preparer's answer (capacity 1)
	spareSeq atomic.Uint64
	urgent   chan *segment // segments read before the scrub checked them
	written  atomic.Uint64 // last index written (not necessarily synced); SyncInterval

	groups    atomic.Uint64 // see Stats
	syncs     atomic.Uint64
	recycled  atomic.Uint64
	created   atomic.Uint64
	prepBytes atomic.Uint64
	sealBytes atomic.Uint64
	padBytes  atomic.Uint64
	scrubbed  atomic.Uint64
	slow      slowSyncs // the "slow fdatasync" warning (metrics.go)

	// free holds files of segments that TruncateFront removed, kept under
	// their free name (FORMAT.md, "Reuse") to become the next segments.
	freeMu sync.Mutex
	free   []freeFile

	truncMu   sync.Mutex
	closeOnce sync.Once
	closeErr  error
}

const (
	stateOpen = iota
	stateSealed
	stateClosed
)

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Path       string
	FirstIndex uint64
	LastIndex  uint64 // FirstIndex-1 when the segment holds no record
	Bytes      int64  // header and committed records; excludes preallocated space
	Sealed     bool   // no more records will be added
	// Tagged: every record of the segment has a tag (Options.Tag), and
	// MinTag..MaxTag bounds them: from a sealed segment's footer, or kept
	// up to date while records are appended.
	Tagged         bool
	MinTag, MaxTag uint64
	// Lanes: what the segment holds of each lane, in lane order (one
	// entry, lane 0, in a log written without lanes).
	Lanes []LaneInfo
}

// LaneInfo is what one segment holds of one lane.
type LaneInfo struct {
	Lane        uint16
	Records     uint64
	Bytes       int64 // frames, headers included
	First, Last uint64
}

// freeFile is a deleted segment's file waiting for reuse; seg, if set, is
// the segment it held, whose readers must be gone before it is rewritten.
type freeFile struct {
	path string
	seg  *segment
}

// freeSuffix names free files: <20-digit first index of the segment it held>.free.
const freeSuffix = ".free"

func freeName(first uint64) string { return fmt.Sprintf("%020d%s", first, freeSuffix) }

func parseFreeName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, freeSuffix)
	if !ok {
		return 0, false
	}
	return parseSegmentName(digits + segSuffix)
}

// takeFree removes from the pool a free file that no reader holds.
func (l *Log) takeFree() (freeFile, bool) {
	l.freeMu.Lock()
	defer l.freeMu.Unlock()
	for i, fr := range l.free {
		if fr.seg == nil || fr.seg.idle() {
			l.free = append(l.free[:i:i], l.free[i+1:]...)
			return fr, true
		}
	}
	return freeFile{}, false
}

// FirstIndex returns the first index still stored; LastIndex()+1 when empty.
func (l *Log) FirstIndex() uint64 { return l.first.Load() }

// LastIndex returns the last committed index, the last one readers can
// see; FirstIndex()-1 when the log is empty.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// Err returns the sticky failure, if any: once a write or fsync failed the
// log accepts no more appends, but committed records stay readable.
func (l *Log) Err() error {
	if p := l.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records the first sticky failure and returns it.
func (l *Log) fail(op string, cause error) error {
	err := fmt.Errorf("%w: shard %q: %s: %w", ErrFailed, l.opts.Name, op, cause)
	if l.failure.CompareAndSwap(nil, &err) {
		l.log.Error().Err(cause).Str("op", op).Msg("wal: log failed; no more appends accepted")
		return err
	}
	return *l.failure.Load()
}

// Notify returns a channel closed when LastIndex next advances (or the log
// closes). Take it before reading so a commit between the read and the
// wait is not missed.
func (l *Log) Notify() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.notify == nil {
		l.notify = make(chan struct{})
		if l.closed.Load() {
			close(l.notify)
		}
	}
	return l.notify
}

// Wake wakes Notify waiters without a commit, for owners whose readers
// wait on something besides new records (a shard closed by a reshard).
func (l *Log) Wake() {
	l.mu.Lock()
	l.wakeLocked()
	l.mu.Unlock()
}

// wakeLocked wakes Notify waiters and every lane's; caller holds mu.
func (l *Log) wakeLocked() {
	l.wakeLogLocked()
	for lane, ch := range l.laneWait {
		close(ch)
		delete(l.laneWait, lane)
	}
}

// wakeLogLocked wakes Notify waiters; caller holds mu.
func (l *Log) wakeLogLocked() {
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
}

// dirtyLane is a lane with records written, not all visible yet: none
// below from, the newest at or below upTo.
type dirtyLane struct {
	lane       uint16
	from, upTo uint64
}

// wakeDirtyLocked wakes the waiters of the lanes of which a record may
// have become visible (last reached from); a lane with records still
// past last stays noted, so its waiters are woken again when a later sync
// (SyncInterval) shows them. Caller holds mu.
func (l *Log) wakeDirtyLocked(last uint64) {
	keep := l.dirty[:0]
	for _, d := range l.dirty {
		if last < d.from {
			keep = append(keep, d)
			continue
		}
		if ch, ok := l.laneWait[d.lane]; ok {
			close(ch)
			delete(l.laneWait, d.lane)
		}
		if d.upTo > last {
			d.from = last + 1
			keep = append(keep, d)
		}
	}
	l.dirty = keep
}

// Segments lists the segment files, oldest first.
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = s.infoLocked()
	}
	return out
}

func (s *segment) infoLocked() SegmentInfo {
	i := SegmentInfo{Path: s.path, FirstIndex: s.first, LastIndex: s.first + s.count - 1, Bytes: s.end, Sealed: s.sealed}
	if s.count > 0 && s.tags.n == s.count {
		i.Tagged, i.MinTag, i.MaxTag = true, s.tags.min, s.tags.max
	}
	if len(s.lanes) > 0 {
		i.Lanes = make([]LaneInfo, len(s.lanes))
		for k, ls := range s.lanes {
			i.Lanes[k] = LaneInfo{Lane: ls.lane, Records: ls.count, Bytes: ls.bytes, First: ls.first, Last: ls.last}
		}
	}
	return i
}

// Size returns the bytes of stored data (segment headers and committed
// records), not counting preallocated space.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.end
	}
	return n
}

// findLocked returns the segment holding index, or nil.
func (l *Log) findLocked(index uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > index }) - 1
	if i < 0 {
		return nil
	}
	s := l.segs[i]
	if index >= s.first+s.count {
		return nil
	}
	return s
}

// TruncateFront deletes whole sealed segments whose records all lie below
// index, oldest first, and makes the deletions durable. It never rewrites
// a segment, so after it FirstIndex may still be below index. Readers inside
// a deleted segment finish their read; later reads get ErrCompacted. Up to
// Options.RecycleSegments of the files are kept, renamed, to become the
// next segments (FORMAT.md, "Reuse"); the others are removed.
func (l *Log) TruncateFront(index uint64) (removed []SegmentInfo, err error) {
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	l.mu.RLock()
	var cands []*segment
	for _, s := range l.segs {
		if !s.sealed || s.first+s.count > index {
			break
		}
		cands = append(cands, s)
		removed = append(removed, s.infoLocked())
	}
	l.mu.RUnlock()
	if len(cands) == 0 {
		return nil, nil
	}
	// Oldest first, so a crash in the middle leaves a contiguous log.
	l.freeMu.Lock()
	room := l.opts.RecycleSegments - len(l.free)
	l.freeMu.Unlock()
	n := 0
	var kept []freeFile
	for _, s := range cands {
		var rerr error
		if len(kept) < room {
			fr := freeFile{path: l.path(freeName(s.first)), seg: s}
			if rerr = l.fs.Rename(s.path, fr.path); rerr == nil {
				kept = append(kept, fr)
			}
		} else {
			rerr = l.fs.Remove(s.path)
		}
		if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("wal: shard %q: remove segment: %w", l.opts.Name, rerr)
			break
		}
		n++
	}
	cands, removed = cands[:n], removed[:n]
	if n > 0 {
		l.mu.Lock()
		l.segs = append([]*segment(nil), l.segs[n:]...)
		if len(l.segs) > 0 {
			l.first.Store(l.segs[0].first)
		} else {
			l.first.Store(l.last.Load() + 1)
		}
		l.mu.Unlock()
		for _, s := range cands {
			s.markGone()
		}
		if serr := l.fs.SyncDir(l.dir); serr != nil && err == nil {
			err = fmt.Errorf("wal: shard %q: sync dir after remove: %w", l.opts.Name, serr)
		} else if serr == nil {
			// Only once the removal is durable: a file rewritten before
			// that could come back after a power cut under its old name
			// with a new header.
			l.freeMu.Lock()
			l.free = append(l.free, kept...)
			l.freeMu.Unlock()
		}
		l.log.Debug().Int("segments", n).Uint64("first_index", l.first.Load()).Msg("wal: truncated front")
	}
	return removed, err
}

// Seal stops appends for good (a closed shard): it commits what is queued,
// syncs, and trims the newest segment's preallocated space. Later appends
// get ErrSealed. Seal is not recorded on disk: after a reopen the log
// accepts appends again, so the owner must remember that it sealed it.
func (l *Log) Seal() error { return l.control(kindSeal) }

// Roll seals the active segment, if it holds any record, and continues in
// a new one. Retention deletes only sealed segments; a shard that stopped
// receiving data would otherwise keep its last records forever.
func (l *Log) Roll() error { return l.control(kindRoll) }

// control queues a Seal or Roll behind every append already queued and
// waits for the committer to carry it out. On a sealed log both are done
// already: its last segment is sealed.
func (l *Log) control(kind reqKind) error {
	l.sendMu.Lock()
	switch l.state {
	case stateClosed:
		l.sendMu.Unlock()
		return ErrClosed
	case stateSealed:
		l.sendMu.Unlock()
		return nil
	}
	if kind == kindSeal {
		l.state = stateSealed
	}
	// Enqueue under the lock so Close cannot stop the committer between
	// the state change and the request; the committer never takes
	// sendMu, so a full queue drains meanwhile.
	r := &request{kind: kind, done: make(chan struct{}, 1)}
	l.queue <- r
	l.sendMu.Unlock()
	<-r.done
	return r.err
}

// Close commits the appends in flight, syncs, and closes the files.
// Readers get ErrClosed afterwards. A sticky failure is not repeated here:
// it is reported by Err.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.sendMu.Lock()
		l.state = stateClosed
		l.sendMu.Unlock()
		close(l.quit)
		<-l.done
		close(l.bgQuit)
		l.bg.Wait()
		l.closeErr = l.w.close(l)
		l.closed.Store(true)
		l.mu.Lock()
		if l.notify == nil {
			l.notify = make(chan struct{})
		}
		l.wakeLocked()
		l.mu.Unlock()
	})
	return l.closeErr
}

// Stats are counters since Open. Groups against appended records shows
// what group commit buys; syncs per second is the disk's flush load.
// Recycled, Created and PrepBytes show what starting segments costs the
// flash: a recycled file is written only where its header goes (and its
// missing tail, if any), a created one in full.
type Stats struct {
	Groups    uint64 // commit groups written: one write system call each (two when the group rolls to a new segment)
	Syncs     uint64 // segment syncs: one per group with SyncAlways, one per tick with SyncInterval, plus rolls
	Recycled  uint64 // segments started in the file of a deleted segment
	Created   uint64 // segment files created and zero-filled (no file to reuse)
	PrepBytes uint64 // bytes written to make files ready as segments: zero fill, padding, headers
	SealBytes uint64 // bytes of footers and trailers written to seal segments
	PadBytes  uint64 // bytes of padding frames that ended writes at a page boundary (FORMAT.md, "Padding")
	Scrubbed  uint64 // sealed segments verified against their footer since Open
	FreeFiles int    // files of deleted segments waiting for reuse now
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	l.freeMu.Lock()
	free := len(l.free)
	l.freeMu.Unlock()
	return Stats{Groups: l.groups.Load(), Syncs: l.syncs.Load(), Recycled: l.recycled.Load(), Created: l.created.Load(),
		PrepBytes: l.prepBytes.Load(), SealBytes: l.sealBytes.Load(), PadBytes: l.padBytes.Load(), Scrubbed: l.scrubbed.Load(), FreeFiles: free}
}

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }
