package backoff

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

func TestCeilingAndDelay(t *testing.T) {
	b := Exp{Base: 100 * time.Millisecond, Cap: 30 * time.Second, Rand: rand.New(rand.NewPCG(3, 4))}
	for attempt, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		if got := b.Ceiling(attempt); got != want {
			t.Errorf("Ceiling(%d) = %v, want %v", attempt, got, want)
		}
	}
	if b.Ceiling(9) != 30*time.Second || b.Ceiling(40) != 30*time.Second || b.Ceiling(1000) != 30*time.Second {
		t.Errorf("ceiling does not stop at the cap: %v %v", b.Ceiling(9), b.Ceiling(40))
	}
	var low, high bool
	for range 1000 {
		d := b.Delay(3)
		if d < 0 || d > 800*time.Millisecond {
			t.Fatalf("Delay(3) = %v outside [0, 800ms]", d)
		}
		low, high = low || d < 200*time.Millisecond, high || d > 600*time.Millisecond
	}
	if !low || !high {
		t.Errorf("full jitter did not spread over the range (low %v, high %v)", low, high)
	}
	global := Exp{Base: time.Millisecond, Cap: time.Second}
	if d := global.Delay(2); d < 0 || d > 4*time.Millisecond {
		t.Errorf("Delay with the global source = %v", d)
	}
}

func TestRetryWaitAndReset(t *testing.T) {
	r := Retry{Exp: Exp{Base: time.Millisecond, Cap: 2 * time.Millisecond}}
	for range 3 {
		if err := r.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if r.attempt != 3 {
		t.Fatalf("attempt = %d after 3 waits", r.attempt)
	}
	r.Reset()
	if r.attempt != 0 {
		t.Fatal("Reset kept the count")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := Retry{Exp: Exp{Base: time.Hour, Cap: time.Hour}, attempt: 5}
	if err := slow.Wait(ctx); err != context.Canceled {
		t.Fatalf("Wait on a done context = %v", err)
	}
}
