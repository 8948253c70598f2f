package forwarder

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

func TestTopicMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true}, {"a/b", "a/c", false}, {"a/+", "a/b", true}, {"a/+", "a/b/c", false},
		{"a/#", "a", true}, {"a/#", "a/b/c", true}, {"#", "a/b", true}, {"#", "$SYS/x", false},
		{"+/b", "$SYS/b", false}, {"+/+", "/b", true}, {"a/+/c", "a//c", true}, {"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false}, {"+", "a", true}, {"+", "a/b", false},
	} {
		if got := topicMatches(tc.filter, tc.topic); got != tc.want {
			t.Errorf("topicMatches(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestFilterJSON(t *testing.T) {
	f := Filter{JSON: []JSONCond{{Path: "alarm.level", Equals: "2"}, {Path: "site", Equals: "north"}, {Path: "ack", Equals: "false"}}}
	for data, want := range map[string]bool{
		`{"alarm":{"level":2},"site":"north","ack":false}`:   true,
		`{"alarm":{"level":2.0},"site":"north","ack":false}`: true,
		`{"alarm":{"level":"2"},"site":"north","ack":false}`: true,
		`{"alarm":{"level":3},"site":"north","ack":false}`:   false,
		`{"alarm":{"level":2},"site":"south","ack":false}`:   false,
		`{"alarm":{"level":2},"site":"north"}`:               false,
		`{"alarm":[2],"site":"north","ack":false}`:           false,
		`not json`: false,
		``:         false,
	} {
		if got := f.match(&shards.Record{Data: []byte(data)}); got != want {
			t.Errorf("match(%s) = %v, want %v", data, got, want)
		}
	}
	if !(Filter{}).match(&shards.Record{Data: []byte("anything")}) {
		t.Error("an empty filter must pass everything")
	}
}

// FuzzTopicMatches: never panics; a topic always matches itself as a
// filter, and # matches every topic not starting with $.
func FuzzTopicMatches(f *testing.F) {
	for _, s := range []string{"a/b", "a/+/c", "#", "+/#", "", "/", "$SYS/x"} {
		f.Add(s, "a/b/c")
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		_ = topicMatches(filter, topic)
		if checkTopicFilter(filter) == nil {
			_ = Filter{Topics: []string{filter}}.match(&shards.Record{Topic: topic})
		}
		if !strings.ContainsAny(topic, "+#") && !topicMatches(topic, topic) {
			t.Errorf("%q does not match itself", topic)
		}
		if !strings.HasPrefix(topic, "$") && !topicMatches("#", topic) {
			t.Errorf("# does not match %q", topic)
		}
	})
}

// FuzzFilterJSON: arbitrary payloads and paths never panic.
func FuzzFilterJSON(f *testing.F) {
	f.Add(`{"a":{"b":1}}`, "a.b", "1")
	f.Add(`[1,2]`, "a", "x")
	f.Fuzz(func(t *testing.T, data, path, equals string) {
		_ = Filter{JSON: []JSONCond{{Path: path, Equals: equals}}}.match(&shards.Record{Data: []byte(data)})
	})
}

// FuzzParseRetryAfter: any header gives a wait in [0, 10m].
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, timeZero); d < 0 || d > maxRetryAfter {
			t.Errorf("parseRetryAfter(%q) = %v", v, d)
		}
	})
}

var timeZero = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
