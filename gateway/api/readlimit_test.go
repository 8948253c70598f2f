package api

import (
	"testing"
	"time"
)

// The read limiter's contract, on a clock the test moves: one second of
// calls and bytes in hand, reads capped by the byte balance, debt for what
// a read took beyond it, and long-polls exempt from the call limit.
func TestReadLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newReadLimiter(5, 1000, t0)
	for i := range 5 {
		if budget, _, ok := l.admit(t0, true, 10_000); !ok || budget != 1000 {
			t.Fatalf("call %d: budget %d, ok %v; want the full second of bytes", i, budget, ok)
		}
	}
	_, wait, ok := l.admit(t0, true, 10_000)
	if ok || wait != 200*time.Millisecond {
		t.Fatalf("sixth call in a second: ok %v, wait %v; want refused for 200ms", ok, wait)
	}
	if _, _, ok := l.admit(t0, false, 10_000); !ok {
		t.Fatal("a long-poll was refused by the call limit")
	}
	t1 := t0.Add(200 * time.Millisecond)
	if budget, _, ok := l.admit(t1, true, 100); !ok || budget != 100 {
		t.Fatalf("after 200ms: budget %d, ok %v; want maxBytes 100", budget, ok)
	}
	// One oversize record: 3 s of bytes, booked as debt.
	l.charge(3000)
	_, wait, ok = l.admit(t1, false, 10_000)
	if want := 2100 * time.Millisecond; ok || wait != want {
		t.Fatalf("after 3000 bytes on a 1000 B/s budget: ok %v, wait %v; want %v", ok, wait, want)
	}
	// A refusal for bytes gives back the call it reserved.
	if _, _, ok := l.admit(t1.Add(time.Second), true, 10_000); ok {
		t.Fatal("admitted while in debt")
	}
	t3 := t1.Add(2100 * time.Millisecond)
	if budget, _, ok := l.admit(t3, true, 10_000); !ok || budget != 100 {
		t.Fatalf("after the debt is paid: budget %d, ok %v; want 100 (a tenth of a second)", budget, ok)
	}
}

func TestReadLimiterUnlimited(t *testing.T) {
	l := newReadLimiter(0, 0, time.Unix(0, 0))
	for range 100 {
		if budget, _, ok := l.admit(time.Unix(0, 0), true, 4096); !ok || budget != 4096 {
			t.Fatalf("unlimited: budget %d, ok %v", budget, ok)
		}
		l.charge(1 << 30)
	}
}
