package forwarder

import (
	"errors"
	"reflect"

	"github.com/weir-gateway/weir/shards"
)

// Phase is what a forwarder is doing, for status pages and the up metric.
type Phase uint8

const (
	// Running: forwarding normally.
	Running Phase = iota
	// Backoff: retrying after throttling or errors; nothing needs fixing.
	Backoff
	// Paused: an operator must fix something (State.Reason says what);
	// probing goes on and forwarding resumes by itself once it is fixed.
	Paused
	// Stopped: not started yet, or closed.
	Stopped
)

func (p Phase) String() string {
	switch p {
	case Running:
		return "running"
	case Backoff:
		return "backoff"
	case Paused:
		return "paused"
	default:
		return "stopped"
	}
}

// State is a forwarder's phase and, when paused, why.
type State struct {
	Phase  Phase
	Reason string // set when Paused: "ResourceNotFoundException: create the upstream stream ..."
}

// String is the text status reports show: "running", "backoff",
// "paused: <reason>" or "stopped".
func (s State) String() string {
	if s.Phase == Paused {
		return "paused: " + s.Reason
	}
	return s.Phase.String()
}

// localErrKinds are the ways the local stream can be unavailable that an
// operator tells apart; a change between them is worth a new log line, a
// repeat of one is not.
var localErrKinds = []error{shards.ErrStreamNotFound, shards.ErrClosed, shards.ErrUnavailable}

// sameLocalErr reports whether a and b are the same kind of local failure:
// the same store sentinel, or, outside those, the same error type.
func sameLocalErr(a, b error) bool {
	for _, k := range localErrKinds {
		if ia, ib := errors.Is(a, k), errors.Is(b, k); ia || ib {
			return ia && ib
		}
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b)
}
