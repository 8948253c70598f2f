package forwarder

import "sync/atomic"

// control is an operator's hold on a forwarder. While held, the engine
// sends nothing new (requests in flight still complete and are
// committed) and reports State{Paused, ReasonOperator}; records keep
// accumulating locally, so the lag grows, and nothing is lost.
type control struct {
	held    atomic.Bool
	changed chan struct{} // wakes the engine on Pause/Resume
}

// ReasonOperator is State.Reason of a forwarder paused by Pause.
const ReasonOperator = "paused by an operator (resume it from the console)"

func (c *control) init() { c.changed = make(chan struct{}, 1) }

func (c *control) set(held bool) {
	if c.held.Swap(held) != held {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

// Pause stops sending until Resume, e.g. while the upstream is being
// repaired. It survives nothing: a restarted gateway forwards again.
func (f *Forwarder) Pause() { f.ctl.set(true) }

// Resume undoes Pause.
func (f *Forwarder) Resume() { f.ctl.set(false) }

// Held reports whether an operator paused the forwarder.
func (f *Forwarder) Held() bool { return f.ctl.held.Load() }
