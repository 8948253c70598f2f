package wal

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Open opens the log in dir, creating dir and a first segment if needed.
// It verifies every segment (see FORMAT.md, "Recovery"): a torn tail of the
// newest segment is cut back to the last good record; damage anywhere else
// fails with a *CorruptionError naming the file and offset.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:    dir,
		opts:   opts,
		fs:     opts.FS,
		log:    opts.Logger.With().Str("wal", opts.Name).Logger(),
		queue:  make(chan *request, queueLen),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		bgQuit: make(chan struct{}),
		kick:   make(chan struct{}, 1),
		spares: make(chan spareResult, 1),
	}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: shard %q: create dir: %w", opts.Name, err)
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.markGone()
		}
		if l.w.seg != nil {
			l.w.seg.release()
		}
		return nil, err
	}
	l.bg.Add(1)
	go l.preparer()
	if opts.Sync == SyncInterval {
		l.bg.Add(1)
		go l.syncLoop(l.written.Load()) // Open synced everything it found
	}
	go l.run()
	return l, nil
}

func (l *Log) recover() error {
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("wal: shard %q: list dir: %w", l.opts.Name, err)
	}
	var firsts []uint64
	removedTemp := false
	for _, name := range names {
		if strings.HasSuffix(name, ".tmp") {
			// A spare segment or an interrupted creation: never part of the log.
			if err := l.fs.Remove(l.path(name)); err != nil {
				return fmt.Errorf("wal: shard %q: remove temp file: %w", l.opts.Name, err)
			}
			removedTemp = true
			continue
		}
		if first, ok := parseSegmentName(name); ok {
			firsts = append(firsts, first) // ReadDir is sorted; 20 digits sort numerically
		}
	}
	if removedTemp {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: shard %q: sync dir: %w", l.opts.Name, err)
		}
	}
	if len(firsts) == 0 {
		return l.createFirst()
	}
	for i, first := range firsts {
		next := uint64(0)
		if i+1 < len(firsts) {
			next = firsts[i+1]
		}
		if err := l.loadSegment(first, next); err != nil {
			return err
		}
	}
	l.first.Store(l.segs[0].first)
	act := l.segs[len(l.segs)-1]
	l.last.Store(act.first + act.count - 1)
	l.w.next = act.first + act.count
	l.w.segRecs = act.count
	l.w.off = act.end
	l.written.Store(l.w.next - 1)
	return nil
}

// createFirst makes the segment of a new, empty log.
func (l *Log) createFirst() error {
	sp, err := l.createSpare()
	if err != nil {
		return fmt.Errorf("wal: shard %q: create first segment: %w", l.opts.Name, err)
	}
	first := l.opts.FirstIndex
	if _, err := sp.f.WriteAt(encodeSegHeader(first), 0); err != nil {
		l.dropSpare(sp)
		return fmt.Errorf("wal: shard %q: write segment header: %w", l.opts.Name, err)
	}
	if err := sp.f.Sync(); err != nil {
		l.dropSpare(sp)
		return fmt.Errorf("wal: shard %q: sync segment header: %w", l.opts.Name, err)
	}
	final := l.path(segmentName(first))
	if err := l.fs.Rename(sp.path, final); err != nil {
		l.dropSpare(sp)
		return fmt.Errorf("wal: shard %q: create first segment: %w", l.opts.Name, l.classify(err))
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		sp.f.Close()
		return fmt.Errorf("wal: shard %q: sync dir: %w", l.opts.Name, err)
	}
	s := &segment{first: first, path: final, end: segHeaderSize}
	s.adopt(sp.f)
	l.segs = []*segment{s}
	l.w.seg, l.w.f, l.w.off, l.w.next = s, sp.f, segHeaderSize, first
	l.first.Store(first)
	l.last.Store(first - 1)
	l.written.Store(first - 1)
	return nil
}

// loadSegment verifies one segment. next is the first index of the
// following segment, 0 for the newest one.
func (l *Log) loadSegment(first, next uint64) error {
	path := l.path(segmentName(first))
	newest := next == 0
	flag := os.O_RDONLY
	if newest {
		flag = os.O_RDWR
	}
	f, err := l.fs.OpenFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("wal: shard %q: open segment: %w", l.opts.Name, err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	if err := l.checkSegHeader(f, path, first); err != nil {
		return err
	}
	want := ^uint64(0) // records the segment must hold; a sealed one is complete
	if !newest {
		if next <= first {
			return l.corruption(path, 0, fmt.Errorf("segment order: next segment starts at %d", next))
		}
		want = next - first
	}
	res, err := scanSegment(f, first, want)
	if err != nil {
		return fmt.Errorf("wal: shard %q: read segment %s: %w", l.opts.Name, path, err)
	}
	// Whatever follows the last good record must be preallocated zeros.
	tail, err := nonZeroEnd(f, res.end, res.size)
	if err != nil {
		return fmt.Errorf("wal: shard %q: read segment %s: %w", l.opts.Name, path, err)
	}
	s := &segment{first: first, path: path, count: res.count, end: res.end, offsets: res.offsets, sealed: !newest}
	if !newest {
		if err := l.checkSealed(path, first, next, res, tail); err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		return nil
	}
	if err := l.settleNewest(f, path, first, res, tail); err != nil {
		return err
	}
	keep = true
	s.adopt(f)
	l.segs = append(l.segs, s)
	l.w.seg, l.w.f = s, f
	return nil
}

func (l *Log) corruption(path string, off int64, err error) error {
	return &CorruptionError{Shard: l.opts.Name, Segment: path, Offset: off, Err: err}
}

// checkSegHeader reads the header of the segment file named for first and
// checks that it agrees with the name.
func (l *Log) checkSegHeader(f File, path string, first uint64) error {
	hdr := make([]byte, segHeaderSize)
	if n, err := f.ReadAt(hdr, 0); n < segHeaderSize {
		if err != nil && !isEOF(err) {
			return fmt.Errorf("wal: shard %q: read segment header: %w", l.opts.Name, err)
		}
		return l.corruption(path, 0, fmt.Errorf("%w: file has %d bytes", errBadSegHeader, n))
	}
	hfirst, err := decodeSegHeader(hdr)
	if err != nil {
		return l.corruption(path, 0, err)
	}
	if hfirst != first {
		return l.corruption(path, 0, fmt.Errorf("%w: header says first index %d, file name %d", errBadSegHeader, hfirst, first))
	}
	return nil
}

// checkSealed fails unless a sealed segment holds every record up to next
// and nothing after them. A sealed segment was synced before its successor
// was named, so anything short of complete is damage, not a crash.
func (l *Log) checkSealed(path string, first, next uint64, res scanResult, tail int64) error {
	if res.count < next-first {
		cause := res.stop
		if cause == nil || errors.Is(cause, errZeroHeader) {
			cause = fmt.Errorf("segment ends after %d records, next segment starts at %d: records %d..%d missing",
				res.count, next, first+res.count, next-1)
		}
		return l.corruption(path, res.end, cause)
	}
	if tail > res.end {
		return l.corruption(path, res.end, fmt.Errorf("%d unexpected bytes after the last record", tail-res.end))
	}
	return nil
}

// settleNewest makes the newest segment durable up to its last good record
// and cuts off whatever follows it.
func (l *Log) settleNewest(f File, path string, first uint64, res scanResult, tail int64) error {
	if tail <= res.end {
		// The previous process may have died before syncing what it wrote
		// (SyncInterval, or a batch that was never acknowledged): make what
		// readers are about to see durable first.
		if err := f.Sync(); err != nil {
			return fmt.Errorf("wal: shard %q: sync segment %s: %w", l.opts.Name, path, err)
		}
		return nil
	}
	// Torn or garbage tail of the newest segment: a crash mid-write.
	// Zero it on disk too, so stale frames can never reappear behind
	// records appended later.
	cause := res.stop
	if cause == nil {
		cause = errors.New("trailing bytes")
	}
	l.log.Warn().Str("segment", path).Int64("offset", res.end).Int64("bytes_cut", tail-res.end).
		Uint64("last_index", first+res.count-1).AnErr("reason", cause).
		Msg("wal: repaired torn tail of newest segment")
	if err := zeroRange(f, res.end, tail); err != nil {
		return fmt.Errorf("wal: shard %q: repair segment %s: %w", l.opts.Name, path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: shard %q: repair segment %s: %w", l.opts.Name, path, err)
	}
	return nil
}

func zeroRange(f File, from, to int64) error {
	for off := from; off < to; {
		n := int64(len(zeros))
		if to-off < n {
			n = to - off
		}
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}
