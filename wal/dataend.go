package wal

import (
	"fmt"
	"os"
)

// DataEnd returns how many bytes of the segment file f hold its data: the
// header and every frame up to the first that fails its checks. A copy of
// that prefix is a valid segment, so backups copy it and not the
// preallocated zeros. clean reports whether everything after end is zero,
// as in a sealed segment; a segment being appended to may end in a frame
// half written, which is not clean and which Open truncates as a torn tail.
func DataEnd(f *os.File) (end int64, clean bool, err error) {
	file := osFile{f: f, fd: int(f.Fd())}
	hdr := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return 0, false, fmt.Errorf("wal: read segment header of %s: %w", f.Name(), err)
	}
	first, err := decodeSegHeader(hdr)
	if err != nil {
		return 0, false, &CorruptionError{Segment: f.Name(), Offset: 0, Err: err}
	}
	r, err := scanSegment(file, first, ^uint64(0))
	if err != nil {
		return 0, false, fmt.Errorf("wal: scan %s: %w", f.Name(), err)
	}
	nz, err := nonZeroEnd(file, r.end, r.size)
	if err != nil {
		return 0, false, fmt.Errorf("wal: scan %s: %w", f.Name(), err)
	}
	return r.end, nz == r.end, nil
}
