package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Byte layout; FORMAT.md has the tables. Every integer is little-endian.
const (
	// segVersion is the segment format this code writes (FORMAT.md):
	// 2 adds the footer of sealed segments, the end marker after each
	// write and the reuse of deleted segments' files; 3 gives frames a
	// lane, so one log can carry the records of many shards. Version 1
	// and 2 segments are read in place and continued.
	segVersion = 3
	// frameVersion is the frame layout, unchanged since format version 1
	// (version 3 gave meaning to its reserved field, the lane).
	frameVersion = 1

	// Segment header: magic[8] version u16 headerSize u16 flags u32
	// firstIndex u64 reserved u32 crc u32 (CRC-32C of bytes 0..27).
	segHeaderSize = 32
	segMagic      = "weirwal\x00"
	// segFlagRecycled: the file held an older segment; bytes after the
	// data may be its stale frames, not zeros (version 2 only).
	segFlagRecycled = 1

	// Frame header: crc u32, length u32, version u8, type u8, lane u16
	// (reserved, 0, before version 3).
	// The CRC-32C covers the record index (8 bytes, implied by position,
	// not stored), header bytes 4..11 and the payload: a frame that is
	// valid at another index, e.g. stale bytes of an older write, fails.
	frameHeaderSize = 12
	frameTypeFull   = 1
	// frameTypePad: zeros that end a write at a page boundary
	// (FORMAT.md, "Padding"). It holds no record and takes no index; its
	// CRC covers the index of the record after it.
	frameTypePad = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameSize is the encoded size of a payload of n bytes.
func frameSize(n int) int64 { return frameHeaderSize + int64(n) }

// appendFrame encodes payload as the frame of record index in lane 0.
func appendFrame(dst []byte, index uint64, payload []byte) []byte {
	return appendLaneFrame(dst, index, 0, payload)
}

// appendLaneFrame encodes payload as the frame of record index in lane
// onto dst.
func appendLaneFrame(dst []byte, index uint64, lane uint16, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize)...)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[4:], uint32(len(payload)))
	h[8] = frameVersion
	h[9] = frameTypeFull
	binary.LittleEndian.PutUint16(h[10:], lane)
	binary.LittleEndian.PutUint32(h[0:], frameCRC(index, h[4:frameHeaderSize], payload))
	return append(dst, payload...)
}

func frameCRC(index uint64, hdrTail, payload []byte) uint32 {
	c := crcUint64(0, index)
	c = crc32.Update(c, castagnoli, hdrTail)
	return crc32.Update(c, castagnoli, payload)
}

// crcUint64 is crc32.Update over the 8 little-endian bytes of v, byte by
// byte: handing crc32 a slice of a local array makes it escape, one heap
// allocation per record on the hot path.
func crcUint64(crc uint32, v uint64) uint32 {
	c := ^crc
	for range 8 {
		c = castagnoli[byte(c)^byte(v)] ^ (c >> 8)
		v >>= 8
	}
	return ^c
}

// appendPadFrame appends a padding frame of size bytes in all (at least
// frameHeaderSize) that precedes record index.
func appendPadFrame(dst []byte, index uint64, size int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[4:], uint32(size-frameHeaderSize))
	h[8] = frameVersion
	h[9] = frameTypePad
	binary.LittleEndian.PutUint32(h[0:], frameCRC(index, h[4:frameHeaderSize], h[frameHeaderSize:]))
	return dst
}

// frameHeader is the parsed, checked header: everything except the CRC,
// which needs the payload.
type frameHeader struct {
	crc    uint32
	length int
	lane   uint16
	pad    bool // a padding frame: no record
}

// parseFrameHeader checks the fixed fields of a frame header (b must hold
// at least frameHeaderSize bytes). An all-zero header gives errZeroHeader:
// preallocated space reads as the end of the data, never as a record.
func parseFrameHeader(b []byte) (frameHeader, error) {
	b = b[:frameHeaderSize]
	if isZero(b) {
		return frameHeader{}, errZeroHeader
	}
	if b[8] != frameVersion || b[9] != frameTypeFull && b[9] != frameTypePad {
		return frameHeader{}, fmt.Errorf("%w: version %d type %d", errBadVersion, b[8], b[9])
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n > MaxRecordSize {
		return frameHeader{}, fmt.Errorf("%w: %d bytes", errBadLength, n)
	}
	// Any lane is accepted in any segment version: the CRC covers the
	// field, so a version 2 frame with a non-zero lane fails its check.
	return frameHeader{crc: binary.LittleEndian.Uint32(b[0:]), length: int(n), lane: binary.LittleEndian.Uint16(b[10:]), pad: b[9] == frameTypePad}, nil
}

// decodeFrame decodes the frame of record index at the start of b. It
// returns the payload (aliasing b) and the frame's encoded size. Errors:
// errZeroHeader (end of data), errShortFrame (b ends inside the frame),
// errBadVersion, errBadLength, errBadCRC.
func decodeFrame(b []byte, index uint64) (payload []byte, n int, err error) {
	if len(b) < frameHeaderSize {
		if isZero(b) {
			return nil, 0, errZeroHeader
		}
		return nil, 0, errShortFrame
	}
	h, err := parseFrameHeader(b)
	if err != nil {
		return nil, 0, err
	}
	end := frameHeaderSize + h.length
	if end > len(b) {
		return nil, 0, errShortFrame
	}
	payload = b[frameHeaderSize:end]
	if frameCRC(index, b[4:frameHeaderSize], payload) != h.crc {
		return nil, 0, errBadCRC
	}
	if h.pad && (h.lane != 0 || !isZero(payload)) {
		return nil, 0, errBadPad
	}
	return payload, end, nil
}

// encodeSegHeader returns the current version's header of a segment whose first
// record is first.
func encodeSegHeader(first uint64, flags uint32) []byte {
	return encodeSegHeaderVersion(first, segVersion, flags)
}

func encodeSegHeaderVersion(first uint64, version uint16, flags uint32) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint16(b[8:], version)
	binary.LittleEndian.PutUint16(b[10:], segHeaderSize)
	binary.LittleEndian.PutUint32(b[12:], flags)
	binary.LittleEndian.PutUint64(b[16:], first)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

// segHeader is a decoded segment header.
type segHeader struct {
	first   uint64
	version uint16
	flags   uint32
}

// decodeSegHeader checks a segment header of version 1, 2 or 3.
func decodeSegHeader(b []byte) (segHeader, error) {
	if len(b) < segHeaderSize {
		return segHeader{}, fmt.Errorf("%w: file shorter than its header", errBadSegHeader)
	}
	if string(b[:8]) != segMagic {
		return segHeader{}, fmt.Errorf("%w: bad magic %q", errBadSegHeader, b[:8])
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return segHeader{}, fmt.Errorf("%w: checksum mismatch", errBadSegHeader)
	}
	h := segHeader{
		version: binary.LittleEndian.Uint16(b[8:]),
		flags:   binary.LittleEndian.Uint32(b[12:]),
		first:   binary.LittleEndian.Uint64(b[16:]),
	}
	if h.version < 1 || h.version > segVersion {
		return segHeader{}, fmt.Errorf("%w: unsupported version %d", errBadSegHeader, h.version)
	}
	if hs := binary.LittleEndian.Uint16(b[10:]); hs != segHeaderSize {
		return segHeader{}, fmt.Errorf("%w: header size %d", errBadSegHeader, hs)
	}
	if h.flags&^segFlagRecycled != 0 || (h.version == 1 && h.flags != 0) {
		return segHeader{}, fmt.Errorf("%w: unknown flags %#x", errBadSegHeader, h.flags)
	}
	return h, nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
