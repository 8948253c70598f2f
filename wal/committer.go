package wal

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
)

// writer is the committer goroutine's state. Nothing else touches it
// (Open fills it before the goroutine starts, Close reads it after).
type writer struct {
	seg     *segment // active segment; nil once sealed
	f       File
	off     int64  // file offset where buf starts: everything before is written
	buf     []byte // frames of the current group not yet written
	next    uint64 // index of the next record
	segRecs uint64 // records in the active segment, including unpublished ones
	crc     uint32 // CRC-32C of the active segment's header and written frames (its footer's checksum)
	tags    tagRange
	lanes   laneStats // of the active segment, including unpublished records
	touched []uint16  // lanes of the group being committed
	// sealedTail: the newest segment is sealed (Open found it so, or a
	// roll sealed it and then failed to start the next): the next
	// append starts a new segment first.
	sealedTail bool
	// padOK: this process started the active segment, so no bytes of an
	// earlier process's torn write lie beyond its data and a write may
	// end in padding (FORMAT.md, "Padding"). A continued segment never
	// gets padding.
	padOK   bool
	padded  bool     // w.buf ends in a padding frame: flush writes no end marker
	carry   *request // the first request of the next group (cutBefore)
	pendOff []uint32
	rolled  []rolledSeg // segments sealed by this group, published with it
	reqs    []*request

	recent   [16]int       // sizes of the last groups, a ring
	avgGroup int64         // moving average of a group's frame bytes (padding's guess at the next group)
	avgFrame int64         // moving average of a frame's bytes
	nGroups  int           // groups gathered, indexes recent
	timer    *time.Timer   // CommitDelay timer, reused across groups
	lastCyc  time.Time     // when the previous group started gathering
	gap      time.Duration // moving average of the time between arrivals
	complete chan []*request
	freeReqs chan []*request // the completer hands its slices back

	sealedLanes map[uint16]bool // Lane.Seal; nil until a lane is sealed

	spare       *spareFile
	kicked      bool // a preparer result is outstanding
	spareFailed bool // the preparer failed; wait for a roll before asking again
}

type rolledSeg struct {
	seg   *segment
	count uint64
	end   int64
	offs  []uint32
	tags  tagRange
	lanes laneStats
}

type spareFile struct {
	path     string
	f        File
	recycled bool // the file of a deleted segment (FORMAT.md, "Reuse")
}

type spareResult struct {
	sp  *spareFile
	err error
}

func (w *writer) pos() int64 { return w.off + int64(len(w.buf)) }

// run is the committer: the only goroutine that writes segments. It takes
// one request, then everything else already queued (up to MaxBatchBytes),
// and commits them with one write and one sync. While it syncs, new
// requests queue up and form the next group: that is the group commit.
func (l *Log) run() {
	defer close(l.done)
	w := &l.w
	w.complete = make(chan []*request, 8)
	w.freeReqs = make(chan []*request, 8)
	completerDone := make(chan struct{})
	go l.completer(completerDone)
	defer func() {
		close(w.complete)
		<-completerDone
	}()
	for {
		if r := w.carry; r != nil {
			w.carry = nil
			l.gather(r)
			continue
		}
		select {
		case r := <-l.queue:
			l.gather(r)
		case <-l.quit:
			// No more senders (state is closed); commit what is left.
			for {
				if r := w.carry; r != nil {
					w.carry = nil
					l.gather(r)
					continue
				}
				select {
				case r := <-l.queue:
					l.gather(r)
				default:
					return
				}
			}
		}
	}
}

// cutBefore reports whether the group of bytes gathered so far should be
// committed without r, which then starts the next group: when writes end
// in padding, r would carry the group a little way into a page that the
// next group's sync would write again, and what is queued behind it is
// less than a page. A group that already spans pages, or a queue that
// holds more than a page, is not cut: under load, groups stay as large as
// the arrivals make them.
func (l *Log) cutBefore(bytes int64, r *request) bool {
	w := &l.w
	if r.kind >= kindSeal || bytes == 0 || !l.padding() || w.avgFrame <= 0 {
		return false
	}
	page := l.opts.PageSize
	start, end := w.pos(), w.pos()+bytes
	if end/page != start/page && end%page != 0 {
		return false // the group already ends in a later page than it starts
	}
	spill := reqSize(r)
	if (end+spill-1)/page == (end-1)/page {
		return false // r fits in the page
	}
	return spill+int64(len(l.queue))*w.avgFrame < page
}

func (l *Log) gather(r *request) {
	w := &l.w
	reqs := w.reqs[:0]
	var ctrl *request
	var bytes int64
	add := func(r *request) {
		if r.kind >= kindSeal {
			ctrl = r
			return
		}
		reqs = append(reqs, r)
		bytes += reqSize(r)
	}
	drain := func() {
		for ctrl == nil && w.carry == nil && bytes < int64(l.opts.MaxBatchBytes) {
			select {
			case r := <-l.queue:
				if l.cutBefore(bytes, r) {
					w.carry = r
					return
				}
				add(r)
			default:
				return
			}
		}
	}
	add(r)
	drain()
	// Linger only until the group is as large as recent ones: appenders
	// that were all waiting then come back together, so waiting longer
	// buys nothing but latency. The target is the largest of the last 16
	// groups, so a group split by an unlucky moment heals instead of
	// settling at half size, and a fleet that shrinks to one device stops
	// lingering after 16 groups. A lone appender (target 1) never waits.
	now := time.Now()
	if n := len(reqs); n > 0 && !w.lastCyc.IsZero() {
		gap := now.Sub(w.lastCyc) / time.Duration(n)
		w.gap += (gap - w.gap) / 8
	}
	w.lastCyc = now
	target := 0
	for _, n := range w.recent {
		target = max(target, n)
	}
	if d := l.opts.CommitDelay; d > 0 && l.opts.Sync == SyncAlways && target > 1 && len(reqs) < target && ctrl == nil && w.carry == nil {
		need := target - len(reqs)
		// Records past the end of the page would start a page of their
		// own, written again by the next group: no reason to wait for them.
		if fill, ok := l.pageFill(bytes); ok {
			need = min(need, fill)
		}
		if need > 0 {
			l.lingerFor(need, d)
			drain()
		}
	}
	w.recent[w.nGroups%len(w.recent)] = len(reqs)
	w.nGroups++
	if len(reqs) > 0 {
		l.commit(reqs)
	}
	clear(reqs) // drop references for the GC
	w.reqs = reqs[:0]
	switch {
	case ctrl == nil:
	case ctrl.kind == kindRoll:
		l.rollNow(ctrl)
	case ctrl.kind == kindSealLane || ctrl.kind == kindUnsealLane:
		l.laneCtl(ctrl)
	default:
		l.seal(ctrl)
	}
}

// linger is how appenders wake a lingering committer: only the arrival
// that brings the queue to the size the committer waits for sends a
// wake-up, so the committer sleeps through the arrivals before it instead
// of being woken by each one.
type linger struct {
	want atomic.Int32  // queued requests the committer waits for; 0: not lingering
	wake chan struct{} // capacity 1; made by the committer before want is first set
}

// lingerNote runs after every enqueue.
func (l *Log) lingerNote() {
	want := l.linger.want.Load()
	if want > 0 && len(l.queue) >= int(want) && l.linger.want.CompareAndSwap(want, 0) {
		l.linger.wake <- struct{}{}
	}
}

// lingerFor waits until need more requests are queued or the commit delay
// ends, whichever is first. The
// delay adapts to the load: about twice the time the missing requests take
// to arrive at the recent rate, capped by CommitDelay.
func (l *Log) lingerFor(need int, limit time.Duration) {
	w := &l.w
	need -= len(l.queue)
	if need <= 0 {
		return
	}
	d := min(limit, 2*time.Duration(need)*w.gap)
	if d < 20*time.Microsecond {
		return
	}
	if l.linger.wake == nil {
		l.linger.wake = make(chan struct{}, 1)
	}
	want := int32(min(need, queueLen))
	l.linger.want.Store(want)
	if len(l.queue) >= int(want) && l.linger.want.CompareAndSwap(want, 0) {
		return // arrived meanwhile
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-l.linger.wake:
	case <-w.timer.C:
		if !l.linger.want.CompareAndSwap(want, 0) {
			<-l.linger.wake // an appender took the wake-up: it is on its way
		}
	}
	w.timer.Stop()
}

func reqSize(r *request) int64 {
	var n int64
	for _, p := range r.payloads {
		n += frameSize(len(p))
	}
	return n
}

// sync is one counted and timed fdatasync of the active segment.
func (l *Log) sync(f File) error {
	l.syncs.Add(1)
	start := time.Now()
	err := f.Sync()
	l.observeSync(time.Since(start))
	return err
}

// commit writes one group. A request never spans segments: one that does
// not fit in the rest of a non-empty segment starts the next one, so a
// refused roll (disk full) leaves no partial request behind. A request
// bigger than a segment gets a fresh segment that grows past SegmentSize.
func (l *Log) commit(reqs []*request) {
	w := &l.w
	l.pollSpare()
	var noSpace error // one failed segment creation per group is enough
	published := false
	first := w.next
	for _, r := range reqs {
		var refuse error
		switch {
		case l.Err() != nil:
			refuse = l.Err()
		case w.seg == nil, w.sealedLanes[r.lane]:
			refuse = ErrSealed
		default:
			if size := reqSize(r); w.sealedTail || w.segRecs > 0 && w.pos()+size > l.opts.SegmentSize {
				if noSpace != nil {
					refuse = noSpace
				} else if err := l.roll(); err != nil {
					refuse = err
					if errors.Is(err, ErrNoSpace) {
						noSpace = err
					}
				}
			}
		}
		if !r.state.CompareAndSwap(stQueued, stClaimed) {
			continue // withdrawn by its waiter
		}
		if refuse != nil {
			r.err = refuse
			r.state.Store(stEncoded)
			continue
		}
		r.first = w.next
		for _, p := range r.payloads {
			if w.segRecs%indexStride == 0 {
				w.pendOff = append(w.pendOff, uint32(w.pos()))
			}
			if len(w.touched) == 0 || w.touched[len(w.touched)-1] != r.lane && !slices.Contains(w.touched, r.lane) {
				w.touched = append(w.touched, r.lane)
			}
			w.buf = appendLaneFrame(w.buf, w.next, r.lane, p)
			w.lanes = w.lanes.add(r.lane, w.next, frameSize(len(p)))
			if l.opts.Tag != nil {
				if t, ok := l.opts.Tag(p); ok {
					w.tags.add(t)
				}
			}
			w.next++
			w.segRecs++
		}
		r.state.Store(stEncoded)
		published = true
	}

	if published && l.Err() == nil {
		l.pad(w.next - first)
		err := l.flush()
		if err == nil {
			l.groups.Add(1)
			l.opts.Metrics.observeGroup(w.next - first)
		}
		if err == nil && l.opts.Sync == SyncAlways {
			if err := l.sync(w.f); err != nil {
				l.fail("sync segment "+w.seg.path, err)
			}
		}
	}
	failure := l.Err()
	if (published || len(w.rolled) > 0) && failure == nil {
		l.publish()
	}
	var deferred []*request
	for _, r := range reqs {
		if r.state.Load() == stCanceled {
			continue
		}
		if r.err == nil && failure != nil {
			r.err = failure
			r.first = 0
		}
		if r.kind == kindDeferred {
			if deferred == nil {
				select {
				case deferred = <-w.freeReqs:
				default:
				}
			}
			deferred = append(deferred, r)
			continue
		}
		l.respond(r)
	}
	if len(deferred) > 0 {
		w.complete <- deferred
	}
	if w.spare == nil && !w.kicked && !w.spareFailed && w.seg != nil && w.pos() >= l.opts.SegmentSize/2 {
		// Half full: prepare the next segment now, off the hot path.
		w.kicked = true
		l.kick <- struct{}{}
	}
}

func (l *Log) respond(r *request) {
	switch r.kind {
	case kindAsync:
		if r.cb != nil {
			r.cb(r.first, r.err)
		}
		putRequest(r)
	default:
		r.done <- struct{}{}
	}
}

// completer reports the outcome of a group's deferred appends, in order,
// while the committer goes on with the next group: the whole group costs
// the committer one channel send, not a wake-up per appender.
func (l *Log) completer(done chan<- struct{}) {
	defer close(done)
	for reqs := range l.w.complete {
		for i, r := range reqs {
			r.c.Committed(r.first, r.err)
			putRequest(r)
			reqs[i] = nil
		}
		select {
		case l.w.freeReqs <- reqs[:0]:
		default:
		}
	}
}

// show makes records up to last visible to readers, once they are
// durable, and returns how far they are visible: never past what publish
// has entered in the segments (a roll writes and syncs records before the
// group that holds them is published).
func (l *Log) show(last uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.showLocked(last)
	return l.last.Load()
}

func (l *Log) showLocked(last uint64) {
	last = min(last, l.pub)
	if last > l.last.Load() {
		l.last.Store(last)
		l.wakeLogLocked()
		l.wakeDirtyLocked(last)
	}
}

// publish makes the group's segment bookkeeping current and, when it is
// durable, makes it visible to readers and wakes them.
func (l *Log) publish() {
	w := &l.w
	l.mu.Lock()
	for _, rs := range w.rolled {
		rs.seg.count, rs.seg.end, rs.seg.tags, rs.seg.lanes = rs.count, rs.end, rs.tags, rs.lanes
		rs.seg.offsets = append(rs.seg.offsets, rs.offs...)
		rs.seg.sealed = true
	}
	s := w.seg
	s.count, s.end, s.tags = w.segRecs, w.off, w.tags
	l.pub = w.next - 1
	// Readers copy what they need under mu, so the slice is reused.
	s.lanes = append(s.lanes[:0], w.lanes...)
	s.offsets = append(s.offsets, w.pendOff...)
	for _, lane := range w.touched {
		i := slices.IndexFunc(l.dirty, func(d dirtyLane) bool { return d.lane == lane })
		if i < 0 {
			// Its records are past everything visible now.
			l.dirty = append(l.dirty, dirtyLane{lane: lane, from: l.last.Load() + 1, upTo: w.next - 1})
		} else {
			l.dirty[i].upTo = w.next - 1
		}
	}
	w.touched = w.touched[:0]
	// With SyncInterval a record is acknowledged once written but becomes
	// visible to readers only once synced (syncLoop, seal, close): a
	// consumer checkpoint or forwarder watermark must never name a record
	// a power cut can take back.
	if l.opts.Sync == SyncAlways {
		l.showLocked(w.next - 1)
	}
	l.mu.Unlock()
	clear(w.rolled)
	w.rolled = w.rolled[:0]
	w.pendOff = w.pendOff[:0]
}

// endMarker follows the frames of every write: a zero frame header, the
// end of the data. In a recycled file the bytes after the data are stale
// frames, not zeros; the marker lets Open tell a clean end from a torn
// write without zeroing the file first (FORMAT.md, "Reuse").
var endMarker [frameHeaderSize]byte

// flush writes the buffered frames at their place in the active segment.
func (l *Log) flush() error {
	w := &l.w
	if len(w.buf) == 0 {
		return nil
	}
	frames := len(w.buf)
	w.crc = crc32.Update(w.crc, castagnoli, w.buf)
	if !w.padded {
		w.buf = append(w.buf, endMarker[:]...)
	}
	w.padded = false
	n, err := w.f.WriteAt(w.buf, w.off)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return l.fail("write segment "+w.seg.path, err)
	}
	n = frames
	w.off += int64(n)
	l.written.Store(w.next - 1)
	if cap(w.buf) > 2*l.opts.MaxBatchBytes {
		w.buf = nil // one huge batch must not pin its buffer forever
	} else {
		w.buf = w.buf[:0]
	}
	return nil
}

// ewma moves a moving average an eighth of the way to v; the first
// value starts it.
func ewma(avg, v int64) int64 {
	if avg == 0 {
		return v
	}
	return avg + (v-avg)/8
}

// padding reports whether writes may end in padding (FORMAT.md,
// "Padding").
func (l *Log) padding() bool {
	return l.opts.PageSize > 0 && l.opts.Sync == SyncAlways && l.w.padOK
}

// pageFill returns how many more records of the usual size would fill
// the page in which a group of bytes (not yet written) would end, when
// writes may end in padding and that size is known.
func (l *Log) pageFill(bytes int64) (int, bool) {
	w := &l.w
	if !l.padding() || w.avgFrame <= 0 {
		return 0, false
	}
	page := l.opts.PageSize
	rest := page - (w.pos()+bytes)%page
	if rest == page {
		return 0, true
	}
	return int((rest + w.avgFrame - 1) / w.avgFrame), true
}

// pad ends the group's write at a page boundary with a padding frame
// when the rest of the page is no larger than the group or than groups
// usually are: the next group would not fit in it, so without padding
// its sync would write this page again (on flash, one more page program
// per sync). A sync then writes each of the group's pages once. The rule
// bounds the space padding takes to about a group's size; a small group
// in a page with room for the next one shares it, as before.
func (l *Log) pad(records uint64) {
	w := &l.w
	if !l.padding() || len(w.buf) == 0 {
		return
	}
	group, usual := int64(len(w.buf)), w.avgGroup
	w.avgGroup = ewma(w.avgGroup, group)
	if records > 0 {
		w.avgFrame = ewma(w.avgFrame, group/int64(records))
	}
	page := l.opts.PageSize
	end := w.pos()
	rest := page - end%page
	// Padding is for the next group's sync; it is wasted (and pushes the
	// footer into another block) where the next group would not fit in
	// the segment after it and starts a new one anyway.
	if rest == page || rest < frameHeaderSize || rest > max(group, usual) || end+rest+max(group, usual) > l.opts.SegmentSize {
		return
	}
	w.buf = appendPadFrame(w.buf, w.next, int(rest))
	w.padded = true
	l.padBytes.Add(uint64(rest))
}

// roll seals the active segment and switches to a new one. Order matters
// for recovery: the old segment's frames, footer and trailer are durable
// before the new one gets its final name, so a segment file that exists on
// disk implies every earlier segment is complete and sealed, and a sealed
// segment that is short or has no footer is always real damage. The new
// segment's header and name are durable before any record in it is written.
func (l *Log) roll() error {
	w := &l.w
	old := w.seg
	if !w.sealedTail {
		if err := l.flush(); err != nil {
			return err
		}
		if err := l.sync(w.f); err != nil {
			return l.fail("sync segment "+old.path, err)
		}
		offs := append(old.offsets[:len(old.offsets):len(old.offsets)], w.pendOff...)
		ft := newFooter(old.first, w.segRecs, offs, w.tags, w.lanes, w.crc)
		if err := writeSeal(w.f, ft, w.off); err != nil {
			return l.fail("seal segment "+old.path, err)
		}
		l.sealBytes.Add(uint64(ft.encodedSize() + trailerSize))
		w.sealedTail = true
	}
	if w.spare == nil && w.kicked {
		// The preparer is on it; waiting is cheaper than a second file.
		l.takeSpare(<-l.spares)
	}
	if w.spare == nil {
		sp, err := l.nextFile()
		if err != nil {
			if errors.Is(err, ErrNoSpace) {
				return err
			}
			return l.fail("create segment", err)
		}
		w.spare = sp
	}
	sp := w.spare
	first := w.next
	ns, crc, err := l.startSegment(sp, first)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return l.noSpace(err)
		}
		return l.fail("start segment", err)
	}
	w.spare = nil
	// An empty sealed segment (Seal of an empty log, a repair that kept no
	// record) has the new one's name: the rename replaced it atomically.
	replaced := old.count == 0 && w.segRecs == 0 && old.path == ns.path
	if !replaced {
		w.rolled = append(w.rolled, rolledSeg{seg: old, count: w.segRecs, end: w.off, offs: w.pendOff, tags: w.tags, lanes: w.lanes})
	}
	l.mu.Lock()
	if replaced {
		l.segs[len(l.segs)-1] = ns
	} else {
		l.segs = append(l.segs, ns)
	}
	l.mu.Unlock()
	if replaced {
		old.markGone()
	}
	oldF := w.f
	w.seg, w.f, w.off, w.segRecs, w.pendOff, w.crc, w.tags, w.lanes = ns, sp.f, segHeaderSize, 0, nil, crc, tagRange{}, nil
	w.sealedTail, w.padOK = false, true
	w.spareFailed = false
	// The old file stays open while readers use it; the writer lets go.
	if oldF != nil {
		if err := old.release(); err != nil {
			l.log.Warn().Err(err).Str("segment", old.path).Msg("wal: close sealed segment")
		}
	}
	l.log.Debug().Str("segment", ns.path).Bool("recycled", sp.recycled).Msg("wal: rolled to new segment")
	return nil
}

// startSegment makes the prepared file sp the segment of records from
// first: header and end marker written and synced, then the final name,
// made durable.
func (l *Log) startSegment(sp *spareFile, first uint64) (*segment, uint32, error) {
	var flags uint32
	if sp.recycled {
		flags = segFlagRecycled
	}
	hdr := encodeSegHeader(first, flags)
	b := append(hdr[:segHeaderSize:segHeaderSize], endMarker[:]...)
	if _, err := sp.f.WriteAt(b, 0); err != nil {
		return nil, 0, err
	}
	if err := sp.f.Sync(); err != nil {
		return nil, 0, err
	}
	l.prepBytes.Add(uint64(len(b)))
	final := l.path(segmentName(first))
	if err := l.fs.Rename(sp.path, final); err != nil {
		return nil, 0, err
	}
	sp.path = final
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, 0, err
	}
	if sp.recycled {
		l.recycled.Add(1)
	}
	s := &segment{first: first, path: final, end: segHeaderSize}
	s.adopt(sp.f)
	return s, crc32.Checksum(hdr, castagnoli), nil
}

func (l *Log) noSpace(cause error) error {
	return fmt.Errorf("%w: shard %q: %w", ErrNoSpace, l.opts.Name, cause)
}

// pollSpare collects the preparer's answer without waiting.
func (l *Log) pollSpare() {
	if !l.w.kicked {
		return
	}
	select {
	case res := <-l.spares:
		l.takeSpare(res)
	default:
	}
}

func (l *Log) takeSpare(res spareResult) {
	w := &l.w
	w.kicked = false
	if res.err != nil {
		w.spareFailed = true
		l.log.Warn().Err(res.err).Msg("wal: preparing the next segment failed; will retry at roll")
		return
	}
	w.spare = res.sp
}

// preparer gets the next segment's file ready ahead of time (a deleted
// segment's file, else a zero-filled one) so that a roll costs a footer,
// a header write, a rename and a few syncs.
func (l *Log) preparer() {
	defer l.bg.Done()
	for {
		select {
		case <-l.kick:
			sp, err := l.nextFile()
			l.spares <- spareResult{sp, err}
		case <-l.bgQuit:
			return
		}
	}
}

// zeros is read-only: the source of preallocation writes.
var zeros = make([]byte, 1<<20)

// createSpare makes a temp file of SegmentSize zero bytes and syncs it.
// Written zeros, not a sparse or fallocated file: overwriting allocated,
// initialised blocks lets fdatasync skip the metadata (extent) update, the
// cheapest sync measured here. ENOSPC gives ErrNoSpace and leaves nothing.
func (l *Log) createSpare() (sp *spareFile, err error) {
	path := l.path(fmt.Sprintf("spare-%d.tmp", l.spareSeq.Add(1)))
	f, err := l.fs.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, l.classify(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			l.fs.Remove(path)
		}
	}()
	for off := int64(0); off < l.opts.SegmentSize; {
		n := int64(len(zeros))
		if rest := l.opts.SegmentSize - off; rest < n {
			n = rest
		}
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return nil, l.classify(err)
		}
		off += n
	}
	if err := f.Sync(); err != nil {
		return nil, l.classify(err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, l.classify(err)
	}
	l.created.Add(1)
	l.prepBytes.Add(uint64(l.opts.SegmentSize))
	return &spareFile{path: path, f: f}, nil
}

// nextFile returns the file of the next segment: a deleted segment's file
// when one is free and no reader still holds it, else a new zero-filled
// one. Reuse writes nothing but the missing tail of a file shorter than
// SegmentSize (sealed segments end at their trailer).
func (l *Log) nextFile() (*spareFile, error) {
	for {
		fr, ok := l.takeFree()
		if !ok {
			return l.createSpare()
		}
		sp, err := l.openFree(fr.path)
		if err == nil {
			return sp, nil
		}
		l.log.Warn().Err(err).Str("file", fr.path).Msg("wal: free segment file not reusable; removing it")
		if rerr := l.fs.Remove(fr.path); rerr != nil {
			l.log.Warn().Err(rerr).Str("file", fr.path).Msg("wal: remove free segment file")
		}
	}
}

func (l *Log) openFree(path string) (sp *spareFile, err error) {
	f, err := l.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size < l.opts.SegmentSize {
		if err := zeroRange(f, size, l.opts.SegmentSize); err != nil {
			return nil, err
		}
		l.prepBytes.Add(uint64(l.opts.SegmentSize - size))
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return &spareFile{path: path, f: f, recycled: true}, nil
}

func (l *Log) classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return l.noSpace(err)
	}
	return err
}

func (l *Log) dropSpare(sp *spareFile) {
	if sp == nil {
		return
	}
	sp.f.Close()
	if sp.recycled {
		// Still under its free name: the next Open reuses it.
		l.freeMu.Lock()
		l.free = append(l.free, freeFile{path: sp.path})
		l.freeMu.Unlock()
		return
	}
	if err := l.fs.Remove(sp.path); err != nil {
		l.log.Warn().Err(err).Str("file", sp.path).Msg("wal: remove spare segment")
	}
}

// seal runs on the committer after everything queued before Seal.
// rollNow starts a new segment if the active one holds records, so that
// retention, which deletes only sealed segments, can reach them.
func (l *Log) rollNow(r *request) {
	w := &l.w
	if w.seg != nil && w.segRecs > 0 && !w.sealedTail && l.Err() == nil {
		r.err = l.roll()
		if len(w.rolled) > 0 && l.Err() == nil {
			l.publish()
		}
	}
	if r.err == nil {
		r.err = l.Err()
	}
	r.done <- struct{}{}
}

func (l *Log) seal(r *request) {
	w := &l.w
	if w.seg != nil {
		if l.Err() == nil && !w.sealedTail {
			// The footer right after the data and the file cut after the
			// trailer: no preallocated space is kept for a closed shard.
			s := w.seg
			offs := append(s.offsets[:len(s.offsets):len(s.offsets)], w.pendOff...)
			ft := newFooter(s.first, w.segRecs, offs, w.tags, w.lanes, w.crc)
			if err := writeSeal(w.f, ft, w.off); err != nil {
				l.fail("seal segment "+s.path, err)
			} else {
				l.sealBytes.Add(uint64(ft.encodedSize() + trailerSize))
			}
		}
		l.mu.Lock()
		if l.Err() == nil {
			l.showLocked(w.next - 1)
		}
		w.seg.sealed = true
		l.mu.Unlock()
		if w.f != nil {
			w.seg.release()
		}
		w.seg, w.f = nil, nil
	}
	l.dropSpare(w.spare)
	w.spare = nil
	r.err = l.Err()
	r.done <- struct{}{}
}

// close runs after the committer and background goroutines stopped.
func (w *writer) close(l *Log) error {
	var err error
	if w.seg != nil && w.f != nil {
		if l.opts.Sync == SyncInterval && l.Err() == nil && !w.sealedTail {
			if serr := w.f.Sync(); serr != nil {
				err = l.fail("sync segment "+w.seg.path, serr)
			}
		}
		if cerr := w.seg.release(); cerr != nil && err == nil {
			err = fmt.Errorf("wal: shard %q: close segment: %w", l.opts.Name, cerr)
		}
		w.seg, w.f = nil, nil
	}
	if w.kicked {
		select {
		case res := <-l.spares:
			l.dropSpare(res.sp)
		default:
		}
		w.kicked = false
	}
	l.dropSpare(w.spare)
	w.spare = nil
	return err
}

// syncLoop is SyncInterval's background fdatasync. Acknowledged records
// reach the disk within SyncInterval plus one sync.
func (l *Log) syncLoop(synced uint64) {
	defer l.bg.Done()
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.bgQuit:
			return
		case <-t.C:
		}
		written := l.written.Load()
		if written == synced || l.Err() != nil {
			continue // never retry a failed sync
		}
		l.mu.RLock()
		var s *segment
		if n := len(l.segs); n > 0 && !l.segs[n-1].sealed {
			s = l.segs[n-1]
		}
		l.mu.RUnlock()
		if s == nil {
			continue
		}
		f, err := s.acquire(l.fs)
		if err != nil {
			continue
		}
		// Records written before a roll were synced by the roll itself,
		// so syncing the newest segment covers everything up to written.
		shown := synced
		if err := l.sync(f); err != nil {
			l.fail("sync segment "+s.path, err)
		} else {
			// Records a roll wrote are shown once their group is
			// published; until then the next tick syncs and tries again.
			shown = max(synced, l.show(written))
		}
		s.release()
		synced = shown
	}
}
