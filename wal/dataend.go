package wal

import (
	"errors"
	"fmt"
	"os"
)

// DataEnd returns how many bytes of the segment file f hold its data: all
// of a sealed version 2 segment (header, frames, footer, trailer), or the
// header and every frame up to the first that fails its checks. A copy of
// that prefix is a valid segment, so backups copy it and not preallocated
// or stale bytes. clean reports whether the data ends cleanly, as in a
// sealed segment: a footer, or zeros (an end marker, for a file that was
// recycled) after the last frame; a segment being appended to may end in
// a frame half written, which is not clean and which Open cuts off as a
// torn tail.
func DataEnd(f *os.File) (end int64, clean bool, err error) {
	file := osFile{f: f, fd: int(f.Fd())}
	hdr := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return 0, false, fmt.Errorf("wal: read segment header of %s: %w", f.Name(), err)
	}
	h, err := decodeSegHeader(hdr)
	if err != nil {
		return 0, false, &CorruptionError{Segment: f.Name(), Offset: 0, Err: err}
	}
	ft, off, ferr := readFooter(file, h.first)
	if ft != nil {
		return off + int64(ft.encodedSize()) + trailerSize, true, nil
	}
	if ferr != nil && isIOError(ferr) {
		return 0, false, fmt.Errorf("wal: read footer of %s: %w", f.Name(), ferr)
	}
	r, err := scanSegment(file, h.first, ^uint64(0), -1, nil)
	if err != nil {
		return 0, false, fmt.Errorf("wal: scan %s: %w", f.Name(), err)
	}
	if h.flags&segFlagRecycled != 0 {
		return r.end, r.stop == nil || errors.Is(r.stop, errZeroHeader), nil
	}
	nz, err := nonZeroEnd(file, r.end, r.size)
	if err != nil {
		return 0, false, fmt.Errorf("wal: scan %s: %w", f.Name(), err)
	}
	return r.end, nz == r.end, nil
}
