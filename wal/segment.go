package wal

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// indexStride: the in-memory index keeps the file offset of every 32nd
// record (4 bytes each), so memory is ~1/8 byte per record: 1 GiB of
// 200-byte records costs ~0.6 MiB. A lookup reads forward over at most
// 31 frames, usually inside one 64 KiB read.
const indexStride = 32

// segment is one file of the log. The fields under "Log.mu" are what
// readers may see; the writer changes them only when it publishes a commit.
type segment struct {
	first uint64
	path  string

	// Guarded by Log.mu.
	count   uint64   // committed records
	end     int64    // offset just past the last committed record
	offsets []uint32 // offsets[k] = offset of record first+k*indexStride
	sealed  bool
	tags    tagRange
	lanes   laneStats // what it holds of each lane

	// check is set for a sealed segment whose frames Open did not read
	// (it trusted the footer): the scrubber or the first read verifies
	// it against the footer's checksum. Nil once verified.
	check *footer
	// damage is what verification found, reported by Log.Verify.
	damage error

	// The open file is shared by the writer and readers (positional I/O)
	// and closed when the last holder releases it, so a segment deleted by
	// TruncateFront stays readable for readers already inside it, and a
	// sealed segment holds no descriptor while nobody reads it.
	hmu  sync.Mutex
	f    File
	refs int
	gone bool
}

func (s *segment) lastIndex() uint64 { return s.first + s.count - 1 }

// tagRange is the smallest and largest tag of a segment's records.
type tagRange struct {
	min, max uint64
	n        uint64 // records that had a tag
}

// laneStat is what one segment holds of one lane (FORMAT.md, "Lanes").
type laneStat struct {
	lane        uint16
	count       uint64
	bytes       int64 // its frames, headers included
	first, last uint64
}

// laneStats are a segment's lanes in lane order; a log without lanes has
// one, lane 0. The committer adds each record as it encodes it.
type laneStats []laneStat

func (ls laneStats) add(lane uint16, index uint64, size int64) laneStats {
	i := 0
	for i < len(ls) && ls[i].lane < lane {
		i++
	}
	if i < len(ls) && ls[i].lane == lane {
		ls[i].count++
		ls[i].bytes += size
		ls[i].last = index
		return ls
	}
	return slices.Insert(ls, i, laneStat{lane: lane, count: 1, bytes: size, first: index, last: index})
}

// find returns what the segment holds of lane.
func (ls laneStats) find(lane uint16) (laneStat, bool) {
	for _, s := range ls {
		if s.lane == lane {
			return s, true
		}
	}
	return laneStat{}, false
}

func (t *tagRange) add(tag uint64) {
	if t.n == 0 || tag < t.min {
		t.min = tag
	}
	if t.n == 0 || tag > t.max {
		t.max = tag
	}
	t.n++
}

// acquire returns the open file; the caller must release it. A segment
// that retention removed is not opened again even while an earlier reader
// still holds its file: the file may be about to be reused.
func (s *segment) acquire(fsys FS) (File, error) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.gone {
		return nil, ErrCompacted
	}
	if s.f == nil {
		f, err := fsys.OpenFile(s.path, os.O_RDONLY, 0)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// TruncateFront deleted it between our lookup and now.
				return nil, ErrCompacted
			}
			return nil, err
		}
		s.f = f
	}
	s.refs++
	return s.f, nil
}

// adopt installs the writer's handle, held until the writer releases it.
func (s *segment) adopt(f File) {
	s.hmu.Lock()
	s.f = f
	s.refs++
	s.hmu.Unlock()
}

func (s *segment) release() error {
	s.hmu.Lock()
	s.refs--
	var f File
	if s.refs == 0 {
		f, s.f = s.f, nil
	}
	s.hmu.Unlock()
	if f != nil {
		return f.Close()
	}
	return nil
}

func (s *segment) markGone() {
	s.hmu.Lock()
	s.gone = true
	s.hmu.Unlock()
}

// idle reports whether no reader holds the file of a removed segment, so
// its file can be reused.
func (s *segment) idle() bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.gone && s.refs == 0
}

// offsetOf returns the offset of the indexed record at or before index,
// and that record's index. Caller holds Log.mu (read).
func (s *segment) offsetOf(index uint64) (int64, uint64) {
	k := (index - s.first) / indexStride
	return int64(s.offsets[k]), s.first + k*indexStride
}

const segSuffix = ".seg"

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// parseSegmentName accepts exactly the names segmentName produces.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// readChunk is how much a cursor reads at once: big enough that scanning
// small records costs few syscalls, small enough to pool.
const readChunk = 64 << 10

// cursor reads frames from a file through a buffer, bounded by limit (the
// committed end for readers, the file size when scanning).
type cursor struct {
	f     File
	buf   []byte
	start int64 // file offset of buf[0]
	n     int   // valid bytes in buf
	limit int64
	lane  uint16 // of the last frame decoded
	pad   bool   // the last frame decoded was padding, not a record
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

func newCursor(f File, limit int64) *cursor {
	return &cursor{f: f, buf: *chunkPool.Get().(*[]byte), limit: limit}
}

func (c *cursor) free() {
	if cap(c.buf) == readChunk {
		b := c.buf[:readChunk]
		chunkPool.Put(&b)
	}
	c.buf = nil
}

// fill makes [off, off+need) available in buf, reading ahead as far as the
// buffer and limit allow. It returns the bytes available from off (may be
// fewer than need at the limit).
func (c *cursor) fill(off int64, need int) ([]byte, error) {
	if off >= c.start && off+int64(need) <= c.start+int64(c.n) {
		return c.buf[off-c.start : c.n], nil
	}
	if need > cap(c.buf) {
		c.free()
		c.buf = make([]byte, need)
	}
	want := int64(cap(c.buf))
	if rest := c.limit - off; rest < want {
		want = rest
	}
	if want <= 0 {
		c.start, c.n = off, 0
		return nil, nil
	}
	c.buf = c.buf[:cap(c.buf)]
	n, err := c.f.ReadAt(c.buf[:want], off)
	if err == io.EOF {
		err = nil
	}
	c.start, c.n = off, n
	if err != nil {
		return nil, err
	}
	return c.buf[:n], nil
}

// frame decodes and verifies the frame of record index at off. The payload
// aliases the cursor's buffer: valid until the next call.
func (c *cursor) frame(off int64, index uint64) (payload []byte, next int64, err error) {
	b, err := c.fill(off, frameHeaderSize)
	if err != nil {
		return nil, 0, err
	}
	if len(b) >= frameHeaderSize {
		h, err := parseFrameHeader(b)
		if err != nil {
			return nil, 0, err
		}
		if b, err = c.fill(off, frameHeaderSize+h.length); err != nil {
			return nil, 0, err
		}
		c.lane, c.pad = h.lane, h.pad
	}
	payload, n, err := decodeFrame(b, index)
	if err != nil {
		return nil, 0, err
	}
	return payload, off + int64(n), nil
}

// header parses the header of the frame at off.
func (c *cursor) header(off int64) (frameHeader, error) {
	b, err := c.fill(off, frameHeaderSize)
	if err != nil {
		return frameHeader{}, err
	}
	if len(b) < frameHeaderSize {
		if isZero(b) {
			return frameHeader{}, errZeroHeader
		}
		return frameHeader{}, errShortFrame
	}
	return parseFrameHeader(b)
}

// skip returns the offset after the record frame at off, and after any
// padding before it, without verifying its payload (the caller only
// passes over it). Padding is passed by its header, as readers pass other
// lanes' records: it lies inside the committed data, which Open verified
// or this process wrote.
func (c *cursor) skip(off int64) (int64, error) {
	for {
		b, err := c.fill(off, frameHeaderSize)
		if err != nil {
			return 0, err
		}
		if len(b) < frameHeaderSize {
			return 0, errShortFrame
		}
		h, err := parseFrameHeader(b)
		if err != nil {
			return 0, err
		}
		next := off + frameSize(h.length)
		if next > c.limit {
			return 0, errShortFrame
		}
		if !h.pad {
			return next, nil
		}
		off = next
	}
}

// scanResult is what a full pass over a segment file found.
type scanResult struct {
	count   uint64
	end     int64 // offset just past the last good record
	offsets []uint32
	stop    error // why the scan stopped; nil at end of file or at max
	size    int64
	crc     uint32 // CRC-32C of the bytes before end (header and frames)
	tags    tagRange
	lanes   laneStats
}

// scanSegment verifies every frame of a segment from its header on, up to
// max records and within limit bytes (the file size when limit < 0). It
// stops at the first frame that fails; the caller decides whether that is
// a torn tail or corruption. tag, if not nil, gives each record's tag.
func scanSegment(f File, first uint64, max uint64, limit int64, tag TagFunc) (scanResult, error) {
	size, err := f.Size()
	if err != nil {
		return scanResult{}, err
	}
	if limit < 0 || limit > size {
		limit = size
	}
	r := scanResult{end: segHeaderSize, size: size}
	c := newCursor(f, limit)
	defer c.free()
	hdr, err := c.fill(0, segHeaderSize)
	if err != nil {
		return r, err
	}
	r.crc = crc32.Update(0, castagnoli, hdr[:min(len(hdr), segHeaderSize)])
	afterPad := false
	for r.end < limit {
		if r.count >= max {
			// Padding after the last record wanted belongs to its write
			// (and to a sealed segment's checksum); nothing else does.
			if h, err := c.header(r.end); err != nil || !h.pad {
				break
			}
		}
		idx := first + r.count
		p, next, err := c.frame(r.end, idx)
		if err != nil {
			if isIOError(err) {
				return r, err
			}
			r.stop = err
			if afterPad {
				r.stop = errEndAfterPad
			}
			break
		}
		r.crc = crc32.Update(r.crc, castagnoli, c.buf[r.end-c.start:next-c.start])
		if afterPad = c.pad; afterPad {
			r.end = next
			continue
		}
		if tag != nil {
			if t, ok := tag(p); ok {
				r.tags.add(t)
			}
		}
		r.lanes = r.lanes.add(c.lane, idx, next-r.end)
		if r.count%indexStride == 0 {
			r.offsets = append(r.offsets, uint32(r.end))
		}
		r.count++
		r.end = next
	}
	return r, nil
}

// isIOError separates a failed read from bytes that fail their checks.
func isIOError(err error) bool {
	switch {
	case errors.Is(err, errZeroHeader), errors.Is(err, errShortFrame), errors.Is(err, errBadVersion), errors.Is(err, errBadPad),
		errors.Is(err, errBadLength), errors.Is(err, errBadCRC), errors.Is(err, errBadFooter),
		errors.Is(err, errBadTrailer), errors.Is(err, errSegmentCRC):
		return false
	}
	return true
}

// nonZeroEnd returns the offset just past the last non-zero byte in
// [from, size), or from if all are zero.
func nonZeroEnd(f File, from, size int64) (int64, error) {
	buf := make([]byte, readChunk)
	last := from
	for off := from; off < size; {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		got, err := f.ReadAt(buf[:n], off)
		if err != nil && err != io.EOF {
			return 0, err
		}
		for i := got - 1; i >= 0; i-- {
			if buf[i] != 0 {
				last = off + int64(i) + 1
				break
			}
		}
		if got == 0 {
			break
		}
		off += int64(got)
	}
	return last, nil
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }
