package wal

import (
	"errors"
	"fmt"
	"os"
	"slices"
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
		urgent: make(chan *segment, 16),
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
	if opts.ScrubRate > 0 {
		l.bg.Add(1)
		go l.scrubber()
	}
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
	removed := false
	for _, name := range names {
		if strings.HasSuffix(name, ".tmp") {
			// A spare segment or an interrupted creation: never part of the log.
			if err := l.fs.Remove(l.path(name)); err != nil {
				return fmt.Errorf("wal: shard %q: remove temp file: %w", l.opts.Name, err)
			}
			removed = true
			continue
		}
		if _, ok := parseFreeName(name); ok {
			if len(l.free) < l.opts.RecycleSegments {
				l.free = append(l.free, freeFile{path: l.path(name)})
				continue
			}
			if err := l.fs.Remove(l.path(name)); err != nil {
				return fmt.Errorf("wal: shard %q: remove free segment file: %w", l.opts.Name, err)
			}
			removed = true
			continue
		}
		if first, ok := parseSegmentName(name); ok {
			firsts = append(firsts, first) // ReadDir is sorted; 20 digits sort numerically
		}
	}
	if removed {
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
	l.pub = act.first + act.count - 1
	l.w.next = act.first + act.count
	l.w.segRecs = act.count
	l.w.off = act.end
	l.w.tags = act.tags
	l.w.lanes = slices.Clone(act.lanes)
	l.written.Store(l.w.next - 1)
	return nil
}

// createFirst makes the segment of a new, empty log.
func (l *Log) createFirst() error {
	sp, err := l.nextFile()
	if err != nil {
		return fmt.Errorf("wal: shard %q: create first segment: %w", l.opts.Name, err)
	}
	first := l.opts.FirstIndex
	s, crc, err := l.startSegment(sp, first)
	if err != nil {
		l.dropSpare(sp)
		return fmt.Errorf("wal: shard %q: create first segment: %w", l.opts.Name, l.classify(err))
	}
	l.segs = []*segment{s}
	l.w.seg, l.w.f, l.w.off, l.w.next, l.w.crc, l.w.padOK = s, sp.f, segHeaderSize, first, crc, true
	l.first.Store(first)
	l.last.Store(first - 1)
	l.pub = first - 1
	l.written.Store(first - 1)
	return nil
}

// loadSegment opens one segment. A sealed segment with a valid footer is
// taken at its footer's word (verified later by the scrub or the first
// read); any other is verified frame by frame. next is the first index of
// the following segment, 0 for the newest one.
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
	hdr, err := l.checkSegHeader(f, path, first)
	if err != nil {
		return err
	}
	if !newest && next <= first {
		return l.corruption(path, 0, fmt.Errorf("segment order: next segment starts at %d", next))
	}
	ft, ftOff, ftErr := readFooter(f, first)
	if ftErr != nil && isIOError(ftErr) {
		return fmt.Errorf("wal: shard %q: read segment %s: %w", l.opts.Name, path, ftErr)
	}
	if ft != nil {
		if !newest && ft.count != next-first {
			return l.corruption(path, ftOff, fmt.Errorf("%w: footer says %d records, next segment starts at %d", errBadFooter, ft.count, next))
		}
		s := &segment{first: first, path: path, count: ft.count, end: ftOff, offsets: ft.offsets, sealed: true, check: ft, lanes: ft.lanes}
		if ft.tagsValid() {
			s.tags = tagRange{min: ft.minTag, max: ft.maxTag, n: ft.count}
		}
		l.segs = append(l.segs, s)
		if newest {
			// Sealed by Seal, by a tail repair, or by a roll that did not
			// get to name the next segment: the next append starts one.
			l.w.seg, l.w.sealedTail = s, true
		}
		return nil
	}
	want := ^uint64(0) // records the segment must hold; a sealed one is complete
	if !newest {
		want = next - first
	}
	res, err := scanSegment(f, first, want, -1, l.opts.Tag)
	if err != nil {
		return fmt.Errorf("wal: shard %q: read segment %s: %w", l.opts.Name, path, err)
	}
	s := &segment{first: first, path: path, count: res.count, end: res.end, offsets: res.offsets, sealed: !newest, tags: res.tags, lanes: res.lanes}
	if !newest {
		// A version 1 segment, sealed before its successor was named; or
		// a version 2 one whose footer is damaged (its successor's name
		// proves the footer was written): its frames decide.
		tail := res.end
		if hdr.version == 1 {
			// Whatever follows the last record must be preallocated zeros
			// (in version 2, the remains of the footer).
			if tail, err = nonZeroEnd(f, res.end, res.size); err != nil {
				return fmt.Errorf("wal: shard %q: read segment %s: %w", l.opts.Name, path, err)
			}
		}
		if err := l.checkSealed(path, first, next, res, tail); err != nil {
			return err
		}
		if hdr.version >= 2 {
			s.damage = l.corruption(path, res.end, fmt.Errorf("footer missing, frames verified: %w", ftErr))
			l.log.Warn().Str("segment", path).AnErr("reason", ftErr).
				Msg("wal: sealed segment has no valid footer; its frames verified, records kept")
		}
		l.segs = append(l.segs, s)
		return nil
	}
	if err := l.settleNewest(f, path, hdr, s, res); err != nil {
		return err
	}
	l.segs = append(l.segs, s)
	l.w.seg = s
	if !s.sealed {
		keep = true
		s.adopt(f)
		l.w.f, l.w.crc = f, res.crc
	} else {
		l.w.sealedTail = true
	}
	return nil
}

// readFooter returns the footer of a sealed version 2 segment and its
// offset, or an error saying why there is none.
func readFooter(f File, first uint64) (*footer, int64, error) {
	size, err := f.Size()
	if err != nil {
		return nil, 0, err
	}
	if size < segHeaderSize+footerMinSize+trailerSize {
		return nil, 0, fmt.Errorf("%w: file of %d bytes", errBadTrailer, size)
	}
	// One read usually holds trailer and footer: 64 KiB is the footer of
	// a 64 MiB segment of 200-byte records.
	n := min(size-segHeaderSize, readChunk)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && !isEOF(err) {
		return nil, 0, err
	}
	off, length, err := decodeTrailer(buf[n-trailerSize:], first, size)
	if err != nil {
		return nil, 0, err
	}
	var b []byte
	if start := off - (size - n); start >= 0 {
		b = buf[start : start+int64(length)]
	} else {
		b = make([]byte, length)
		if _, err := f.ReadAt(b, off); err != nil && !isEOF(err) {
			return nil, 0, err
		}
	}
	ft, err := decodeFooter(b, first, off)
	if err != nil {
		return nil, 0, err
	}
	return ft, off, nil
}

func (l *Log) corruption(path string, off int64, err error) error {
	return &CorruptionError{Shard: l.opts.Name, Segment: path, Offset: off, Err: err}
}

// checkSegHeader reads the header of the segment file named for first and
// checks that it agrees with the name.
func (l *Log) checkSegHeader(f File, path string, first uint64) (segHeader, error) {
	hdr := make([]byte, segHeaderSize)
	if n, err := f.ReadAt(hdr, 0); n < segHeaderSize {
		if err != nil && !isEOF(err) {
			return segHeader{}, fmt.Errorf("wal: shard %q: read segment header: %w", l.opts.Name, err)
		}
		return segHeader{}, l.corruption(path, 0, fmt.Errorf("%w: file has %d bytes", errBadSegHeader, n))
	}
	h, err := decodeSegHeader(hdr)
	if err != nil {
		return segHeader{}, l.corruption(path, 0, err)
	}
	if h.first != first {
		return segHeader{}, l.corruption(path, 0, fmt.Errorf("%w: header says first index %d, file name %d", errBadSegHeader, h.first, first))
	}
	return h, nil
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

// settleNewest decides whether appends can go on in the newest segment.
// They can after a clean end: the scan stopped at a zero frame header (the
// end marker every write carries, or preallocated zeros) and, in a file
// that was never recycled, everything after it is zero. Anything else is
// a torn write: the bytes after the last good record are copied to a
// .broken file, then the segment is sealed there (footer, trailer, file
// cut after them) and the next append starts a new segment, so no frame
// of the torn write can ever be read back behind later records.
func (l *Log) settleNewest(f File, path string, hdr segHeader, s *segment, res scanResult) error {
	clean := res.stop == nil || errors.Is(res.stop, errZeroHeader)
	var tail int64
	var err error
	if clean && hdr.flags&segFlagRecycled == 0 || !clean {
		if tail, err = nonZeroEnd(f, res.end, res.size); err != nil {
			return fmt.Errorf("wal: shard %q: read segment %s: %w", l.opts.Name, path, err)
		}
	}
	if clean && hdr.flags&segFlagRecycled == 0 {
		clean = tail <= res.end
	}
	if clean {
		// The previous process may have died before syncing what it wrote
		// (SyncInterval, or a batch that was never acknowledged): make what
		// readers are about to see durable first.
		if err := f.Sync(); err != nil {
			return fmt.Errorf("wal: shard %q: sync segment %s: %w", l.opts.Name, path, err)
		}
		return nil
	}
	cause := res.stop
	if cause == nil {
		cause = errors.New("trailing bytes")
	}
	broken, err := l.copyAside(f, path, res.end, tail)
	if err != nil {
		return fmt.Errorf("wal: shard %q: repair segment %s: copy the cut bytes aside: %w", l.opts.Name, path, err)
	}
	l.log.Warn().Str("segment", path).Int64("offset", res.end).Int64("bytes_cut", tail-res.end).
		Str("copied_to", broken).Uint64("last_index", s.first+res.count-1).AnErr("reason", cause).
		Msg("wal: repaired torn tail of newest segment")
	ft := newFooter(s.first, res.count, res.offsets, res.tags, res.lanes, res.crc)
	if err := writeSeal(f, ft, res.end); err != nil {
		return fmt.Errorf("wal: shard %q: repair segment %s: %w", l.opts.Name, path, err)
	}
	s.sealed = true
	return nil
}

// copyAside copies bytes [from, to) of the segment at path into a new
// file next to it, <segment>.<from>.broken, and makes it durable, so that
// a repair never destroys bytes nobody has looked at.
func (l *Log) copyAside(f File, path string, from, to int64) (string, error) {
	name := fmt.Sprintf("%s.%d.broken", path, from)
	out, err := l.fs.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer out.Close()
	buf := make([]byte, min(to-from, readChunk))
	for off := from; off < to; {
		n := min(to-off, int64(len(buf)))
		if _, err := f.ReadAt(buf[:n], off); err != nil && !isEOF(err) {
			return "", err
		}
		if _, err := out.WriteAt(buf[:n], off-from); err != nil {
			return "", err
		}
		off += n
	}
	if err := out.Sync(); err != nil {
		return "", err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return "", err
	}
	return name, nil
}

// writeSeal ends a segment whose frames end at end: footer and trailer
// written there, the file cut right after them, all durable.
func writeSeal(f File, ft *footer, end int64) error {
	tail := sealTail(ft, end)
	if _, err := f.WriteAt(tail, end); err != nil {
		return err
	}
	if err := f.Truncate(end + int64(len(tail))); err != nil {
		return err
	}
	return f.Sync()
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
