package shards

import "encoding/binary"

// arrivalTag is the wal's tag of a stored record (wal.Options.Tag): its
// arrival time in unix milliseconds, read straight from the CBOR array
// (key, data, arrival, ...) without decoding the record, because the
// committer calls it for every record. Each sealed segment's footer keeps
// the smallest and largest, so retention and AT_TIMESTAMP find segments
// by time without reading them. Held to decodeRecord by FuzzArrivalTag.
// An encrypted record keeps its arrival in clear in the envelope (see
// ENCRYPTION.md), so its segments are found by time without the key.
func arrivalTag(p []byte) (uint64, bool) {
	if isEnvelope(p) {
		return envelopeArrival(p)
	}
	if len(p) == 0 || p[0]>>5 != 4 { // an array
		return 0, false
	}
	_, n, ok := cborHead(p[1:], p[0])
	if !ok {
		return 0, false
	}
	p = p[1+n:]
	for _, major := range []byte{3, 2} { // key (text), data (bytes)
		if len(p) == 0 || p[0]>>5 != major {
			return 0, false
		}
		v, n, ok := cborHead(p[1:], p[0])
		if !ok || v > uint64(len(p)-1-n) {
			return 0, false
		}
		p = p[1+n+int(v):]
	}
	if len(p) == 0 {
		return 0, false
	}
	v, _, ok := cborHead(p[1:], p[0])
	switch {
	case !ok:
		return 0, false
	case p[0]>>5 == 0 && v <= 1<<63-1: // a non-negative int64
		return v, true
	}
	return 0, false // a negative or otherwise odd arrival: no tag
}

// cborHead decodes the argument of a CBOR head whose first byte is h and
// whose following bytes are b: the value and how many bytes of b it used.
func cborHead(b []byte, h byte) (v uint64, n int, ok bool) {
	switch ai := h & 0x1f; {
	case ai < 24:
		return uint64(ai), 0, true
	case ai == 24 && len(b) >= 1:
		return uint64(b[0]), 1, true
	case ai == 25 && len(b) >= 2:
		return uint64(binary.BigEndian.Uint16(b)), 2, true
	case ai == 26 && len(b) >= 4:
		return uint64(binary.BigEndian.Uint32(b)), 4, true
	case ai == 27 && len(b) >= 8:
		return binary.BigEndian.Uint64(b), 8, true
	}
	return 0, 0, false
}
