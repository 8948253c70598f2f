package ingest

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestFilterCovers(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"devices/#", "devices/+/events/#", true},
		{"devices/#", "devices", true},
		{"#", "devices/+/telemetry", true},
		{"devices/+/telemetry", "devices/d1/telemetry", true},
		{"devices/+/+", "devices/+/telemetry", true},
		{"devices/+/telemetry", "devices/+/#", false},
		{"devices/+", "devices/d1/telemetry", false},
		{"devices/d1/telemetry", "devices/+/telemetry", false},
		{"devices/+/events/#", "devices/#", false},
		{"devices/+/#", "devices/d1", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
	}
	for _, tt := range tests {
		if got := FilterCovers(tt.a, tt.b); got != tt.want {
			t.Errorf("FilterCovers(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestShadowedRoutes(t *testing.T) {
	routes := []Route{
		{Filter: "devices/+/events/#"},
		{Filter: "devices/#"},
		{Filter: "devices/+/events/alarm"}, // covered by route 0, not only by 1
		{Filter: "other/x"},
		{Filter: "#"},
		{Filter: "other/y"},
	}
	got := ShadowedRoutes(routes)
	want := []Shadow{{Route: 2, By: 0}, {Route: 5, By: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ShadowedRoutes = %+v, want %+v", got, want)
	}
	if MatchRoute(routes, "devices/d1/events/alarm") != 0 || MatchRoute(routes, "devices/d1/telemetry") != 1 || MatchRoute(routes[:4], "nowhere") != -1 {
		t.Fatal("MatchRoute does not pick the first matching route")
	}
}

// TestUnroutedLoggedOncePerTopic: the first publish to an unrouted topic
// is logged, repeats of it never are, and other topics share one line per
// interval, counting what they held back.
func TestUnroutedLoggedOncePerTopic(t *testing.T) {
	var buf bytes.Buffer
	u := newUnroutedLog(zerolog.New(&buf), time.Second)
	t0 := time.Unix(1000, 0)
	u.note("a/b", "c1", t0)
	u.note("a/b", "c1", t0.Add(2*time.Second))
	u.note("x/y", "c2", t0.Add(2100*time.Millisecond))
	u.note("x/z", "c2", t0.Add(2200*time.Millisecond)) // within the interval: held back
	u.note("x/z", "c2", t0.Add(4*time.Second))
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(got) != 3 || !strings.Contains(got[0], `"topic":"a/b"`) || !strings.Contains(got[1], `"topic":"x/y"`) ||
		!strings.Contains(got[2], `"topic":"x/z"`) || !strings.Contains(got[2], `"suppressed":1`) {
		t.Fatalf("log lines:\n%s", buf.String())
	}
	for range unroutedTopicsMax + 10 {
		t0 = t0.Add(2 * time.Second)
		u.note(t0.String(), "c3", t0)
	}
	if len(u.seen) > unroutedTopicsMax {
		t.Fatalf("%d topics remembered, want at most %d", len(u.seen), unroutedTopicsMax)
	}
}

// FuzzFilterCovers: whenever a is said to cover b, every topic b matches
// is matched by a, so a shadow warning is never a false alarm.
func FuzzFilterCovers(f *testing.F) {
	f.Add("devices/#", "devices/+/events/#", "devices/d1/events/x")
	f.Add("+/+", "a/b", "a/b")
	f.Add("#", "$SYS/#", "$SYS/x")
	f.Add("a/+/#", "a/b", "a/b")
	f.Fuzz(func(t *testing.T, a, b, topic string) {
		ra, rb := Route{Filter: a}, Route{Filter: b}
		if ra.filterProblem() != "" || rb.filterProblem() != "" || strings.ContainsAny(topic, "+#") || topic == "" {
			return
		}
		if FilterCovers(a, b) && rb.Matches(topic) && !ra.Matches(topic) {
			t.Fatalf("FilterCovers(%q, %q) but %q matches only the second", a, b, topic)
		}
	})
}
