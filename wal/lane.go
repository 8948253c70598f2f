package wal

import (
	"context"
	"errors"
	"fmt"
)

// Lane is one of the record streams that share a log: every frame names
// its lane (FORMAT.md, "Lanes"). A stream's shards appended to lanes of one
// log share its commit groups, so one write and one fdatasync cover the
// records of every shard that arrived together, instead of one fdatasync
// (and one rewritten 4 KiB page) per shard.
//
// Indexes stay the log's: a lane's records have increasing indexes with
// the other lanes' records in the gaps. FirstIndex, LastIndex, Notify,
// retention and the segment files are the log's too.
//
// The Log's own append methods write to lane 0 and its reads return the
// records of every lane, which is what a log written before lanes holds.
type Lane struct {
	log *Log
	id  uint16
}

// Lane returns the view of lane id.
func (l *Log) Lane(id uint16) *Lane { return &Lane{log: l, id: id} }

// ID is the lane's number, as stored in its frames.
func (n *Lane) ID() uint16 { return n.id }

// Log is the log the lane belongs to.
func (n *Lane) Log() *Log { return n.log }

// Append is Log.Append into the lane.
func (n *Lane) Append(ctx context.Context, payload []byte) (uint64, error) {
	return n.log.appendLane(ctx, n.id, payload)
}

// AppendBatch is Log.AppendBatch into the lane: the payloads get
// contiguous indexes, no other lane's record between them.
func (n *Lane) AppendBatch(ctx context.Context, payloads [][]byte) (uint64, error) {
	return n.log.appendBatchLane(ctx, n.id, payloads)
}

// AppendAsync is Log.AppendAsync into the lane.
func (n *Lane) AppendAsync(payload []byte, done func(index uint64, err error)) error {
	return n.log.appendAsyncLane(n.id, payload, done)
}

// AppendDeferred is Log.AppendDeferred into the lane. Completions of all
// lanes are called by the log's one completion goroutine, in append order.
func (n *Lane) AppendDeferred(ctx context.Context, payload []byte, c Completion) error {
	return n.log.appendDeferredLane(ctx, n.id, payload, c)
}

// Stored describes the lane's stored records, as far as readers can see
// them: the index of its first and last, how many there are and their
// frames' bytes; ok is false when it stores none. With SyncInterval a
// record written but not yet synced is not counted; last is then capped
// at the log's LastIndex, which is past every visible record of the lane
// and before every invisible one.
func (n *Lane) Stored() (first, last, records uint64, bytes int64, ok bool) {
	l := n.log
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segs {
		ls, in := s.lanes.find(n.id)
		if !in {
			continue
		}
		if !ok {
			first, ok = ls.first, true
		}
		last = ls.last
		records += ls.count
		bytes += ls.bytes
	}
	if vis := l.last.Load(); ok && last > vis {
		last = vis
		if first > vis {
			return 0, 0, 0, 0, false
		}
	}
	return first, last, records, bytes, ok
}

// Count returns how many of the lane's committed records have an index
// in [from, to): whole segments from their lane tables, the segments that
// from or to cut by reading frame headers.
func (n *Lane) Count(from, to uint64) (uint64, error) {
	l := n.log
	var total uint64
	var partial [][2]uint64
	l.mu.RLock()
	for _, s := range l.segs {
		ls, in := s.lanes.find(n.id)
		if !in || ls.last < from || ls.first >= to {
			continue
		}
		if ls.first >= from && ls.last < to {
			total += ls.count
			continue
		}
		partial = append(partial, [2]uint64{max(from, ls.first), min(to-1, ls.last)})
	}
	l.mu.RUnlock()
	for _, p := range partial {
		for at := p[0]; at <= p[1]; {
			next, err := l.readFrom(at, int32(n.id), 0, 0, func(i uint64, _ uint16, _ []byte) error {
				if i > p[1] {
					return errStopCount
				}
				total++
				return nil
			})
			if errors.Is(err, errStopCount) {
				break
			}
			if err != nil {
				return total, err
			}
			if next <= at {
				break
			}
			at = next
		}
	}
	return total, nil
}

var errStopCount = errors.New("counted")

// Notify returns a channel closed when a record of the lane next becomes
// visible, or when the log wakes all readers (Log.Wake, Close). Unlike
// Log.Notify it ignores the other lanes' records, so a reader of a quiet
// lane is not woken by a busy one. Take it before reading.
func (n *Lane) Notify() <-chan struct{} {
	l := n.log
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.laneWait[n.id]
	if !ok {
		ch = make(chan struct{})
		if l.closed.Load() {
			close(ch)
			return ch
		}
		if l.laneWait == nil {
			l.laneWait = make(map[uint16]chan struct{})
		}
		l.laneWait[n.id] = ch
	}
	return ch
}

// laneScanBudget bounds the bytes of other lanes' frames one ReadFrom
// passes over before it returns, so a read of a quiet lane behind a busy
// one costs a bounded amount of I/O per call, as a Kinesis GetRecords
// call may return no record and a position to go on from.
const laneScanBudget = 4 << 20

// ReadFrom calls fn for the lane's committed records from index from on,
// in order, as Log.ReadFrom does for the whole log, passing over the other
// lanes' records (their headers are read, their payloads neither checked
// nor delivered). It may return having delivered no record though the
// lane has more, when it passed over laneScanBudget bytes of other lanes:
// next is then where to go on from, beyond what it passed over.
func (n *Lane) ReadFrom(from uint64, maxRecords, maxBytes int, fn func(index uint64, payload []byte) error) (next uint64, err error) {
	return n.log.readFrom(from, int32(n.id), maxRecords, maxBytes, func(index uint64, _ uint16, p []byte) error {
		return fn(index, p)
	})
}

// Read returns a copy of the lane's record at index: ErrNotFound if the
// record there belongs to another lane, otherwise as Log.Read.
func (n *Lane) Read(index uint64) ([]byte, error) {
	var out []byte
	var other bool
	_, err := n.log.readFrom(index, anyLane, 1, 0, func(_ uint64, lane uint16, p []byte) error {
		if lane != n.id {
			other = true
			return nil
		}
		out = append(make([]byte, 0, len(p)), p...)
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case other:
		return nil, fmt.Errorf("%w: index %d is not in lane %d", ErrNotFound, index, n.id)
	case out == nil:
		return nil, fmt.Errorf("%w: index %d (last %d)", ErrNotFound, index, n.log.LastIndex())
	}
	return out, nil
}

// Seal stops appends to the lane (a shard closed by a reshard): appends
// queued before it commit, later ones get ErrSealed. It returns the log's
// last index at the seal, at or after the lane's last record. Like
// Log.Seal it is not recorded on disk; the owner remembers it and seals
// the lane again after a reopen. The other lanes go on.
func (n *Lane) Seal() (last uint64, err error) {
	return n.log.laneControl(kindSealLane, n.id)
}

// Unseal lets appends into a sealed lane again (a reshard that failed
// after sealing its parents gives them back).
func (n *Lane) Unseal() error {
	_, err := n.log.laneControl(kindUnsealLane, n.id)
	return err
}

// laneControl queues a lane seal or unseal behind every append already
// queued and waits for the committer to carry it out.
func (l *Log) laneControl(kind reqKind, lane uint16) (uint64, error) {
	l.sendMu.RLock()
	if l.state != stateOpen {
		err := l.stateErr()
		l.sendMu.RUnlock()
		return 0, err
	}
	r := &request{kind: kind, lane: lane, done: make(chan struct{}, 1)}
	l.queue <- r
	l.sendMu.RUnlock()
	<-r.done
	return r.first, r.err
}

// laneCtl runs a lane seal or unseal on the committer, after everything
// queued before it.
func (l *Log) laneCtl(r *request) {
	w := &l.w
	if r.kind == kindSealLane {
		if w.sealedLanes == nil {
			w.sealedLanes = make(map[uint16]bool)
		}
		w.sealedLanes[r.lane] = true
	} else {
		delete(w.sealedLanes, r.lane)
	}
	r.first = w.next - 1
	r.err = l.Err()
	r.done <- struct{}{}
}
