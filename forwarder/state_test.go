package forwarder

import (
	"errors"
	"fmt"
	"testing"

	"github.com/weir-gateway/weir/shards"
)

// Status pages keep the text they had when the state was a string.
func TestStateString(t *testing.T) {
	for _, c := range []struct {
		s    State
		want string
	}{
		{State{Phase: Running}, "running"},
		{State{Phase: Backoff}, "backoff"},
		{State{Phase: Paused, Reason: "NoCredentials: provide credentials"}, "paused: NoCredentials: provide credentials"},
		{State{Phase: Stopped}, "stopped"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.s, got, c.want)
		}
	}
}

// The local-stream warning is logged once per kind of failure, however
// the message around it changes.
func TestSameLocalErr(t *testing.T) {
	gone1 := fmt.Errorf("%w: telemetry", shards.ErrStreamNotFound)
	gone2 := fmt.Errorf("lookup at 12:00:01: %w", gone1)
	closed := fmt.Errorf("%w: shutting down", shards.ErrClosed)
	other1, other2 := errors.New("a"), errors.New("b")
	for _, c := range []struct {
		a, b error
		want bool
	}{
		{gone1, gone2, true},
		{gone1, closed, false},
		{closed, gone2, false},
		{other1, other2, true}, // same type, no sentinel: one warning
		{other1, gone1, false},
	} {
		if got := sameLocalErr(c.a, c.b); got != c.want {
			t.Errorf("sameLocalErr(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
