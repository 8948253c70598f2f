package wal

import (
	"errors"
	"fmt"
)

// Read returns a copy of the record at index. ErrCompacted if index is
// below FirstIndex, ErrNotFound if above LastIndex, a *CorruptionError if
// the stored frame fails its checks.
func (l *Log) Read(index uint64) ([]byte, error) {
	var out []byte
	_, err := l.ReadFrom(index, 1, 0, func(_ uint64, p []byte) error {
		out = append(make([]byte, 0, len(p)), p...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("%w: index %d (last %d)", ErrNotFound, index, l.LastIndex())
	}
	return out, nil
}

// ReadFrom calls fn for committed records from index from on, in order,
// until maxRecords records or maxBytes payload bytes were delivered (0 or
// less: no limit), always delivering at least one record if one exists. The
// payload passed to fn is only valid during the call. It returns the index
// after the last record fn accepted; fn's error stops the read and is
// returned as is. ErrCompacted if from is below FirstIndex (also when
// retention deletes the segment mid-read).
func (l *Log) ReadFrom(from uint64, maxRecords, maxBytes int, fn func(index uint64, payload []byte) error) (next uint64, err error) {
	return l.readFrom(from, anyLane, maxRecords, maxBytes, func(index uint64, _ uint16, p []byte) error {
		return fn(index, p)
	})
}

// ReadLanes is ReadFrom that also passes each record's lane, for tools
// that see a log whole (dump, backup).
func (l *Log) ReadLanes(from uint64, maxRecords, maxBytes int, fn func(index uint64, lane uint16, payload []byte) error) (next uint64, err error) {
	return l.readFrom(from, anyLane, maxRecords, maxBytes, fn)
}

// anyLane asks readFrom for the records of every lane.
const anyLane = -1

// readFrom is ReadFrom of the records of one lane (want), or of all
// (anyLane), passing over at most laneScanBudget bytes of other lanes.
func (l *Log) readFrom(from uint64, want int32, maxRecords, maxBytes int, fn func(index uint64, lane uint16, payload []byte) error) (next uint64, err error) {
	next = from
	if l.closed.Load() {
		return next, ErrClosed
	}
	if first := l.first.Load(); from < first {
		return next, fmt.Errorf("%w: index %d (first %d)", ErrCompacted, from, first)
	}
	last := l.last.Load()
	records, bytes := 0, 0
	var passed int64 // bytes of other lanes' frames passed over
	for next <= last {
		l.mu.RLock()
		s := l.findLocked(next)
		if s == nil {
			first := l.first.Load()
			l.mu.RUnlock()
			if next < first {
				return next, fmt.Errorf("%w: index %d (first %d)", ErrCompacted, next, first)
			}
			return next, fmt.Errorf("%w: index %d", ErrNotFound, next)
		}
		segLast := s.lastIndex()
		if want != anyLane {
			// The segment's lane table says where the lane's records
			// are: none here from next on, or not before its first.
			ls, in := s.lanes.find(uint16(want))
			if !in || ls.last < next {
				l.mu.RUnlock()
				next = segLast + 1
				continue
			}
			next = max(next, ls.first)
		}
		off, at := s.offsetOf(next)
		end := s.end
		unchecked := s.check != nil
		l.mu.RUnlock()
		if unchecked {
			l.wantCheck(s)
		}

		f, err := s.acquire(l.fs)
		if err != nil {
			if errors.Is(err, ErrCompacted) {
				return next, fmt.Errorf("%w: index %d", ErrCompacted, next)
			}
			return next, fmt.Errorf("wal: shard %q: open segment: %w", l.opts.Name, err)
		}
		c := newCursor(f, end)
		stop, err := func() (bool, error) {
			defer s.release()
			defer c.free()
			for ; at < next; at++ {
				n, err := c.skip(off)
				if err != nil {
					return true, l.readErr(s, off, err)
				}
				off = n
			}
			for next <= last && next <= segLast {
				h, err := c.header(off)
				if err != nil {
					return true, l.readErr(s, off, err)
				}
				if h.pad {
					// Padding (FORMAT.md): passed by its header.
					next := off + frameSize(h.length)
					if next > end {
						return true, l.readErr(s, off, errShortFrame)
					}
					off = next
					continue
				}
				if want != anyLane && h.lane != uint16(want) {
					// Another lane's record: its header is enough to
					// pass it (its CRC is checked by its own readers).
					if passed >= laneScanBudget {
						return true, nil
					}
					size := frameSize(h.length)
					if off+size > end {
						return true, l.readErr(s, off, errShortFrame)
					}
					passed += size
					off += size
					next++
					continue
				}
				p, nextOff, err := c.frame(off, next)
				if err != nil {
					return true, l.readErr(s, off, err)
				}
				if maxBytes > 0 && records > 0 && bytes+len(p) > maxBytes {
					return true, nil
				}
				if err := fn(next, h.lane, p); err != nil {
					return true, err
				}
				records++
				bytes += len(p)
				next++
				off = nextOff
				if maxRecords > 0 && records >= maxRecords {
					return true, nil
				}
			}
			return false, nil
		}()
		if stop || err != nil {
			return next, err
		}
	}
	return next, nil
}

func (l *Log) readErr(s *segment, off int64, err error) error {
	if isIOError(err) {
		return fmt.Errorf("wal: shard %q: read segment %s: %w", l.opts.Name, s.path, err)
	}
	return &CorruptionError{Shard: l.opts.Name, Segment: s.path, Offset: off, Err: err}
}
