package wal

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Open trusts a sealed segment's footer and reads none of its frames, so
// damage inside a sealed segment is found later: by the background scrub
// (Options.ScrubRate), by the first read of the segment (which asks the
// scrub to check it next), or on demand by Log.Verify and VerifyDir (the
// `weir verify` command). Reads are never wrong meanwhile: every record
// read is checked against its own CRC.

// checkAgainstFooter reads a sealed segment's frames up to the footer at
// end and compares them with what the footer says. pace, if set, is
// called with the bytes about to be read (the scrub's rate limit).
func checkAgainstFooter(f File, first uint64, end int64, ft *footer, tag TagFunc, pace func(int64)) (off int64, err error) {
	if pace != nil {
		pace(end)
	}
	res, err := scanSegment(f, first, ft.count, end, tag)
	if err != nil {
		return 0, err
	}
	switch {
	case res.count < ft.count:
		cause := res.stop
		if cause == nil || errors.Is(cause, errZeroHeader) {
			cause = fmt.Errorf("%w: footer says %d records, frames hold %d", errBadFooter, ft.count, res.count)
		}
		return res.end, cause
	case res.end != end:
		return res.end, fmt.Errorf("%w: %d unexpected bytes between the last record and the footer", errBadFooter, end-res.end)
	case !slices.Equal(res.offsets, ft.offsets):
		return end, fmt.Errorf("%w: index entries disagree with the frames", errBadFooter)
	case !slices.Equal(res.lanes, ft.lanes):
		return end, fmt.Errorf("%w: lane table disagrees with the frames", errBadFooter)
	case res.crc != ft.segCRC:
		return end, fmt.Errorf("%w: footer says %#08x, bytes give %#08x", errSegmentCRC, ft.segCRC, res.crc)
	case tag != nil && ft.tagsValid() && (res.tags.min != ft.minTag || res.tags.max != ft.maxTag):
		return end, fmt.Errorf("%w: tags %d..%d, records hold %d..%d", errBadFooter, ft.minTag, ft.maxTag, res.tags.min, res.tags.max)
	}
	return 0, nil
}

// verifySegment checks one sealed segment against its footer and records
// the outcome. A segment deleted meanwhile is not damage.
func (l *Log) verifySegment(s *segment, pace func(int64)) error {
	l.mu.RLock()
	ft, end := s.check, s.end
	l.mu.RUnlock()
	if ft == nil {
		return nil
	}
	f, err := s.acquire(l.fs)
	if err != nil {
		if errors.Is(err, ErrCompacted) {
			return nil
		}
		return fmt.Errorf("wal: shard %q: open segment: %w", l.opts.Name, err)
	}
	off, cause := checkAgainstFooter(f, s.first, end, ft, l.opts.Tag, pace)
	s.release()
	if cause != nil && isIOError(cause) {
		return fmt.Errorf("wal: shard %q: verify segment %s: %w", l.opts.Name, s.path, cause)
	}
	l.mu.Lock()
	s.check = nil
	if cause != nil {
		s.damage = l.corruption(s.path, off, cause)
	}
	err = s.damage
	l.mu.Unlock()
	l.scrubbed.Add(1)
	if cause != nil {
		l.log.Error().Err(err).Msg("wal: sealed segment failed verification; its intact records stay readable")
	}
	return err
}

// Verify checks every sealed segment Open took at its footer's word and
// not yet verified, now and at full speed, and returns the damage found
// in any segment (errors.Join of *CorruptionError), or nil.
func (l *Log) Verify() error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.mu.RLock()
	segs := slices.Clone(l.segs)
	l.mu.RUnlock()
	var errs []error
	for _, s := range segs {
		if err := l.verifySegment(s, nil); err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				return err
			}
		}
	}
	l.mu.RLock()
	for _, s := range l.segs {
		if s.damage != nil {
			errs = append(errs, s.damage)
		}
	}
	l.mu.RUnlock()
	return errors.Join(errs...)
}

// wantCheck asks the scrub to verify s next (its first read).
func (l *Log) wantCheck(s *segment) {
	select {
	case l.urgent <- s:
	default: // the scrub is busy; it gets there in order
	}
}

// scrubber verifies, oldest first, the sealed segments Open did not read,
// at no more than ScrubRate bytes per second; segments someone reads go
// first.
func (l *Log) scrubber() {
	defer l.bg.Done()
	rate := l.opts.ScrubRate
	pace := func(n int64) {
		// Sleeping before the read spreads a segment's cost over time.
		d := time.Duration(float64(n) / float64(rate) * float64(time.Second))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-l.bgQuit:
		}
	}
	for {
		var s *segment
		select {
		case s = <-l.urgent:
		case <-l.bgQuit:
			return
		default:
			s = l.nextUnchecked()
			if s == nil {
				select {
				case s = <-l.urgent:
				case <-l.bgQuit:
					return
				}
			}
		}
		select {
		case <-l.bgQuit:
			return
		default:
		}
		if err := l.verifySegment(s, pace); err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				l.log.Warn().Err(err).Msg("wal: scrub could not read a segment")
			}
		}
	}
}

func (l *Log) nextUnchecked() *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segs {
		if s.check != nil {
			return s
		}
	}
	return nil
}

// Report is what VerifyDir found in one log directory.
type Report struct {
	Segments int
	Records  uint64
	Damage   []*CorruptionError // acknowledged data that fails its checks
	// Notes are findings Open handles by itself: a torn tail of the
	// newest segment (cut back to the last good record and copied
	// aside), leftover temporary files.
	Notes []string
}

// VerifyDir checks every segment of the log in dir without changing
// anything: each sealed segment's frames against their CRCs and its footer
// (or, without a footer, its record count and zero tail), and the newest
// segment up to its last good record. It must not run beside a gateway
// that has the log open (retention may reuse a file under it).
func VerifyDir(dir, name string, tag TagFunc) (Report, error) {
	var rep Report
	fsys := OSFS()
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return rep, err
	}
	var firsts []uint64
	for _, n := range names {
		if first, ok := parseSegmentName(n); ok {
			firsts = append(firsts, first)
		}
	}
	corrupt := func(path string, off int64, err error) {
		rep.Damage = append(rep.Damage, &CorruptionError{Shard: name, Segment: path, Offset: off, Err: err})
	}
	for i, first := range firsts {
		next := uint64(0)
		if i+1 < len(firsts) {
			next = firsts[i+1]
		}
		path := dir + string(os.PathSeparator) + segmentName(first)
		rep.Segments++
		count, err := verifyFile(fsys, path, first, next, tag, corrupt, &rep.Notes)
		if err != nil {
			return rep, err
		}
		rep.Records += count
	}
	return rep, nil
}

// verifyFile checks one segment file for VerifyDir and returns how many
// good records it holds.
func verifyFile(fsys FS, path string, first, next uint64, tag TagFunc, corrupt func(string, int64, error), notes *[]string) (uint64, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	l := &Log{opts: Options{Name: "verify"}}
	hdr, err := l.checkSegHeader(f, path, first)
	if err != nil {
		var ce *CorruptionError
		if errors.As(err, &ce) {
			corrupt(path, ce.Offset, ce.Err)
			return 0, nil
		}
		return 0, err
	}
	newest := next == 0
	ft, off, ferr := readFooter(f, first)
	if ferr != nil && isIOError(ferr) {
		return 0, ferr
	}
	if ft != nil {
		if !newest && ft.count != next-first {
			corrupt(path, off, fmt.Errorf("%w: footer says %d records, next segment starts at %d", errBadFooter, ft.count, next))
		}
		at, cause := checkAgainstFooter(f, first, off, ft, tag, nil)
		if cause != nil {
			if isIOError(cause) {
				return 0, cause
			}
			corrupt(path, at, cause)
		}
		return ft.count, nil
	}
	want := ^uint64(0)
	if !newest {
		want = next - first
	}
	res, err := scanSegment(f, first, want, -1, nil)
	if err != nil {
		return 0, err
	}
	tail := res.end
	if newest && (hdr.flags&segFlagRecycled == 0 || res.stop != nil && !errors.Is(res.stop, errZeroHeader)) || !newest && hdr.version == 1 {
		if tail, err = nonZeroEnd(f, res.end, res.size); err != nil {
			return 0, err
		}
	}
	if newest {
		if res.stop != nil && !errors.Is(res.stop, errZeroHeader) || hdr.flags&segFlagRecycled == 0 && tail > res.end {
			*notes = append(*notes, fmt.Sprintf("%s:%d: torn tail after record %d (%d bytes): the next start cuts it off and copies it aside",
				path, res.end, first+res.count-1, tail-res.end))
		}
		return res.count, nil
	}
	if err := l.checkSealed(path, first, next, res, tail); err != nil {
		var ce *CorruptionError
		if errors.As(err, &ce) {
			corrupt(path, ce.Offset, ce.Err)
		}
		return res.count, nil
	}
	if hdr.version >= 2 {
		corrupt(path, res.end, fmt.Errorf("footer missing, frames verified: %w", ferr))
	}
	return res.count, nil
}
