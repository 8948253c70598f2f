package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A sealed version 2 segment ends with a footer and a trailer (FORMAT.md,
// "Footer"): header | frames | footer | trailer, and nothing after. Open
// reads the trailer at the end of the file, then the footer it points to,
// instead of every frame, so opening a log costs the same whatever it
// retains.
const (
	footerMagic   = "weirftr\x00"
	trailerMagic  = "weirend\x00"
	trailerSize   = 32
	footerFixed   = 56 // bytes before the offsets
	footerMinSize = footerFixed + 4
	// footerTagsValid: every record of the segment carried a tag
	// (Options.Tag), so MinTag and MaxTag bound them all.
	footerTagsValid = 1
	// footerLanes (version 3): the lane table follows the index entries.
	// Without it (version 2) every record is in lane 0.
	footerLanes = 2
	// laneEntrySize: lane u16, reserved u16, count u32, first u64, last
	// u64, bytes u64.
	laneEntrySize = 32
)

var (
	errBadFooter  = errors.New("bad segment footer")
	errBadTrailer = errors.New("bad segment trailer")
	errSegmentCRC = errors.New("segment checksum mismatch")
)

// footer is what a sealed segment says about itself.
type footer struct {
	first   uint64
	count   uint64
	minTag  uint64
	maxTag  uint64
	flags   uint32
	segCRC  uint32   // CRC-32C of the file's bytes before the footer
	offsets []uint32 // offset of every indexStride-th record
	lanes   laneStats
}

func (f *footer) tagsValid() bool { return f.flags&footerTagsValid != 0 }

// encodedSize is the footer's length on disk.
func (f *footer) encodedSize() int {
	n := footerMinSize + 4*len(f.offsets)
	if f.flags&footerLanes != 0 {
		n += 4 + laneEntrySize*len(f.lanes)
	}
	return n
}

// appendFooter encodes f onto dst.
//
//	0  magic "weirftr\0"    8
//	8  first index          u64
//	16 record count         u64
//	24 min tag              u64
//	32 max tag              u64
//	40 flags                u32
//	44 segment CRC          u32
//	48 index stride         u32
//	52 index entries n      u32
//	56 offsets              n × u32
//	   (flag footerLanes) lane entries m u32, then m × laneEntrySize
//	   footer CRC           u32 (CRC-32C of every byte before it)
func appendFooter(dst []byte, f *footer) []byte {
	start := len(dst)
	dst = append(dst, footerMagic...)
	dst = binary.LittleEndian.AppendUint64(dst, f.first)
	dst = binary.LittleEndian.AppendUint64(dst, f.count)
	dst = binary.LittleEndian.AppendUint64(dst, f.minTag)
	dst = binary.LittleEndian.AppendUint64(dst, f.maxTag)
	dst = binary.LittleEndian.AppendUint32(dst, f.flags)
	dst = binary.LittleEndian.AppendUint32(dst, f.segCRC)
	dst = binary.LittleEndian.AppendUint32(dst, indexStride)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f.offsets)))
	for _, o := range f.offsets {
		dst = binary.LittleEndian.AppendUint32(dst, o)
	}
	if f.flags&footerLanes != 0 {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f.lanes)))
		for _, ls := range f.lanes {
			dst = binary.LittleEndian.AppendUint16(dst, ls.lane)
			dst = binary.LittleEndian.AppendUint16(dst, 0)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(ls.count))
			dst = binary.LittleEndian.AppendUint64(dst, ls.first)
			dst = binary.LittleEndian.AppendUint64(dst, ls.last)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(ls.bytes))
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeFooter checks a footer that must fill b exactly and belongs to the
// segment starting at first whose frames end at dataEnd.
func decodeFooter(b []byte, first uint64, dataEnd int64) (*footer, error) {
	if len(b) < footerMinSize {
		return nil, fmt.Errorf("%w: %d bytes", errBadFooter, len(b))
	}
	if string(b[:8]) != footerMagic {
		return nil, fmt.Errorf("%w: bad magic", errBadFooter)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadFooter)
	}
	f := &footer{
		first:  binary.LittleEndian.Uint64(b[8:]),
		count:  binary.LittleEndian.Uint64(b[16:]),
		minTag: binary.LittleEndian.Uint64(b[24:]),
		maxTag: binary.LittleEndian.Uint64(b[32:]),
		flags:  binary.LittleEndian.Uint32(b[40:]),
		segCRC: binary.LittleEndian.Uint32(b[44:]),
	}
	stride := binary.LittleEndian.Uint32(b[48:])
	n := binary.LittleEndian.Uint32(b[52:])
	idxEnd := footerFixed + 4*int64(n) // where the index entries end
	if idxEnd > int64(len(body)) {
		return nil, fmt.Errorf("%w: %d index entries in %d bytes", errBadFooter, n, len(b))
	}
	switch {
	case f.first != first:
		return nil, fmt.Errorf("%w: first index %d, segment starts at %d", errBadFooter, f.first, first)
	case stride != indexStride:
		return nil, fmt.Errorf("%w: index stride %d", errBadFooter, stride)
	case f.flags&^(footerTagsValid|footerLanes) != 0:
		return nil, fmt.Errorf("%w: unknown flags %#x", errBadFooter, f.flags)
	case f.flags&footerLanes == 0 && idxEnd != int64(len(body)):
		return nil, fmt.Errorf("%w: %d bytes after the index entries", errBadFooter, int64(len(body))-idxEnd)
	case uint64(n) != (f.count+indexStride-1)/indexStride:
		return nil, fmt.Errorf("%w: %d index entries for %d records", errBadFooter, n, f.count)
	case f.count > uint64(dataEnd-segHeaderSize)/frameHeaderSize:
		return nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", errBadFooter, f.count, dataEnd)
	case f.tagsValid() && f.count > 0 && f.minTag > f.maxTag:
		return nil, fmt.Errorf("%w: min tag above max tag", errBadFooter)
	}
	f.offsets = make([]uint32, n)
	prev := int64(-1)
	for i := range f.offsets {
		o := binary.LittleEndian.Uint32(b[footerFixed+4*i:])
		// Index entries are stride records apart, each at least a frame header.
		if int64(o) <= prev || int64(o) >= dataEnd || (i == 0 && o != segHeaderSize) {
			return nil, fmt.Errorf("%w: index entry %d at offset %d", errBadFooter, i, o)
		}
		f.offsets[i], prev = o, int64(o)
	}
	if f.flags&footerLanes == 0 {
		if f.count > 0 {
			// Version 2: every record is in lane 0.
			f.lanes = laneStats{{count: f.count, bytes: dataEnd - segHeaderSize, first: f.first, last: f.first + f.count - 1}}
		}
		return f, nil
	}
	lanes, err := decodeLanes(body[idxEnd:], f.first, f.count, dataEnd)
	if err != nil {
		return nil, err
	}
	f.lanes = lanes
	return f, nil
}

// decodeLanes checks a footer's lane table (b: from its entry count to
// the footer CRC): lanes in increasing order, each with records inside
// the segment, the counts adding up to the segment's.
func decodeLanes(b []byte, first, count uint64, dataEnd int64) (laneStats, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: no lane table", errBadFooter)
	}
	m := int64(binary.LittleEndian.Uint32(b))
	if int64(len(b)) != 4+m*laneEntrySize {
		return nil, fmt.Errorf("%w: lane table of %d entries in %d bytes", errBadFooter, m, len(b))
	}
	lanes := make(laneStats, m)
	var total uint64
	var bytes int64
	for i := range lanes {
		e := b[4+i*laneEntrySize:]
		ls := laneStat{
			lane:  binary.LittleEndian.Uint16(e),
			count: uint64(binary.LittleEndian.Uint32(e[4:])),
			first: binary.LittleEndian.Uint64(e[8:]),
			last:  binary.LittleEndian.Uint64(e[16:]),
			bytes: int64(binary.LittleEndian.Uint64(e[24:])),
		}
		switch {
		case i > 0 && ls.lane <= lanes[i-1].lane:
			return nil, fmt.Errorf("%w: lane %d out of order", errBadFooter, ls.lane)
		case ls.count == 0 || ls.first < first || ls.last < ls.first || ls.last-first >= count || ls.last-ls.first+1 < ls.count:
			return nil, fmt.Errorf("%w: lane %d: %d records at %d..%d", errBadFooter, ls.lane, ls.count, ls.first, ls.last)
		case ls.bytes < int64(ls.count)*frameHeaderSize || ls.bytes > dataEnd:
			return nil, fmt.Errorf("%w: lane %d: %d bytes for %d records", errBadFooter, ls.lane, ls.bytes, ls.count)
		}
		lanes[i] = ls
		total += ls.count
		bytes += ls.bytes
	}
	// The frames fill the data but for padding (FORMAT.md, "Padding"),
	// which belongs to no lane: Verify compares the table with the frames.
	if total != count || bytes > dataEnd-segHeaderSize {
		return nil, fmt.Errorf("%w: lanes hold %d records in %d bytes, the segment %d in %d", errBadFooter, total, bytes, count, dataEnd-segHeaderSize)
	}
	return lanes, nil
}

// appendTrailer encodes the trailer that locates a footer at off.
//
//	0  magic "weirend\0" 8
//	8  footer offset     u64
//	16 first index       u64
//	24 footer length     u32
//	28 CRC-32C of 0..27  u32
func appendTrailer(dst []byte, first uint64, off int64, length int) []byte {
	start := len(dst)
	dst = append(dst, trailerMagic...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(off))
	dst = binary.LittleEndian.AppendUint64(dst, first)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(length))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeTrailer checks the last trailerSize bytes of a segment file of
// size bytes whose header says first, and returns where its footer is.
func decodeTrailer(b []byte, first uint64, size int64) (off int64, length int, err error) {
	if len(b) != trailerSize || string(b[:8]) != trailerMagic {
		return 0, 0, fmt.Errorf("%w: no trailer", errBadTrailer)
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return 0, 0, fmt.Errorf("%w: checksum mismatch", errBadTrailer)
	}
	off = int64(binary.LittleEndian.Uint64(b[8:]))
	length = int(binary.LittleEndian.Uint32(b[24:]))
	if f := binary.LittleEndian.Uint64(b[16:]); f != first {
		// A recycled file's old trailer: it belongs to another segment.
		return 0, 0, fmt.Errorf("%w: first index %d, segment starts at %d", errBadTrailer, f, first)
	}
	if off < segHeaderSize || length < footerMinSize || off+int64(length)+trailerSize != size {
		return 0, 0, fmt.Errorf("%w: footer at %d+%d in a file of %d bytes", errBadTrailer, off, length, size)
	}
	return off, length, nil
}

// sealTail returns the footer and trailer of a segment whose frames end at
// dataEnd: the bytes to write at dataEnd, after which the file ends.
func sealTail(f *footer, dataEnd int64) []byte {
	b := appendFooter(make([]byte, 0, f.encodedSize()+trailerSize), f)
	return appendTrailer(b, f.first, dataEnd, f.encodedSize())
}

// newFooter describes a segment of count records at first: its index
// entries, its tags and the CRC of its bytes before the footer.
func newFooter(first, count uint64, offsets []uint32, tags tagRange, lanes laneStats, crc uint32) *footer {
	ft := &footer{first: first, count: count, offsets: offsets, segCRC: crc, flags: footerLanes, lanes: lanes}
	if count > 0 && tags.n == count {
		ft.flags |= footerTagsValid
		ft.minTag, ft.maxTag = tags.min, tags.max
	}
	return ft
}
