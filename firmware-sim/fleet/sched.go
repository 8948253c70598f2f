package fleet

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

type evKind uint8

const (
	evConnect evKind = iota
	evGenerate
	evOffline
	evFunc
)

type event struct {
	at   time.Duration // since the start of the run
	seq  uint64        // FIFO among equal times
	kind evKind
	d    *device
	fn   func(now time.Duration)
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].seq < h[j].seq)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*h = old[:len(old)-1]
	return e
}

// scheduler is the one goroutine that drives time for the whole fleet:
// connects, message generation at each device's rate, outages, storms. A
// heap of due times replaces one timer goroutine per device.
type scheduler struct {
	start time.Time
	mu    sync.Mutex
	h     eventHeap
	n     uint64
	wake  chan struct{}
	// reached is the latest time up to which every due event has fired.
	reached atomic.Int64
}

func newScheduler(start time.Time) *scheduler {
	return &scheduler{start: start, wake: make(chan struct{}, 1)}
}

func (s *scheduler) add(ev event) {
	s.mu.Lock()
	s.n++
	ev.seq = s.n
	heap.Push(&s.h, ev)
	first := s.h[0].seq == ev.seq
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *scheduler) run(stop <-chan struct{}, fire func(event)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []event
	for {
		s.mu.Lock()
		now := time.Since(s.start)
		due = due[:0]
		for len(s.h) > 0 && s.h[0].at <= now {
			due = append(due, heap.Pop(&s.h).(event))
		}
		wait := time.Duration(-1)
		if len(s.h) > 0 {
			wait = s.h[0].at - now
		}
		s.mu.Unlock()
		for _, ev := range due {
			fire(ev)
		}
		if len(due) > 0 {
			continue
		}
		s.reached.Store(int64(now))
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-stop:
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// waitReached blocks until every event due before t has fired.
func (s *scheduler) waitReached(t time.Duration, stop <-chan struct{}) {
	for time.Duration(s.reached.Load()) < t {
		// Nudge an idle scheduler so that it records how far it got.
		select {
		case s.wake <- struct{}{}:
		default:
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Millisecond):
		}
	}
}
