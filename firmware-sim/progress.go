package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
)

// progress renders fleet snapshots: one line rewritten in place on a
// terminal, plain lines otherwise (CI logs, pipes).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	last  fleet.Snapshot
	shown bool
}

func newProgress(w io.Writer, tty bool) *progress { return &progress{w: w, tty: tty} }

func (p *progress) update(s fleet.Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rate := 0.0
	if dt := (s.Elapsed - p.last.Elapsed).Seconds(); dt > 0 {
		rate = float64(s.Acked-p.last.Acked) / dt
	}
	p.last = s
	line := formatSnapshot(s, rate)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func formatSnapshot(s fleet.Snapshot, rate float64) string {
	return fmt.Sprintf("%6.1fs  connected %d/%d  sent %d  acked %d  failed %d  in flight %d  %.0f msg/s",
		s.Elapsed.Round(100*time.Millisecond).Seconds(), s.Connected, s.Devices, s.Sent, s.Acked, s.Failed, s.InFlight, rate)
}

// log prints a message without mangling the in-place line.
func (p *progress) log(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", a...)
	if p.tty && p.shown {
		fmt.Fprint(p.w, formatSnapshot(p.last, 0))
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprintln(p.w)
	}
}
