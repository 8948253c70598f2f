package ingest

import (
	"errors"
	"strings"
	"testing"
)

func TestMatchLevels(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b/d", false},
		{"a/+/c", "a/x/c", true},
		{"a/+/c", "a//c", true}, // + matches an empty level
		{"a/+/c", "a/x/y/c", false},
		{"a/+", "a/x", true},
		{"a/+", "a", false},
		{"a/+", "a/", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"/+", "/a", true},
		{"a/#", "a", true}, // # includes the parent level
		{"a/#", "a/b", true},
		{"a/#", "a/b/c/d", true},
		{"a/#", "ab", false},
		{"a/#", "b/a", false},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"+/#", "a", true},
		{"+/b/#", "a/b", true},
		{"+/b/#", "a/c", false},
		{"A/b", "a/b", false}, // case-sensitive
		// $-topics are not matched by a leading wildcard (MQTT 5 §4.7.2)...
		{"#", "$SYS/broker", false},
		{"+/monitor", "$SYS/monitor", false},
		{"+", "$x", false},
		// ...but an explicit first level matches them, and later
		// wildcards work as usual.
		{"$SYS/#", "$SYS/broker/load", true},
		{"$aws/things/+/shadow", "$aws/things/d1/shadow", true},
		{"a/$x", "a/$x", true},
		{"a/+", "a/$x", true},
	}
	for _, c := range cases {
		got := matchLevels(strings.Split(c.filter, "/"), c.topic)
		if got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

func TestRouterFirstMatchWins(t *testing.T) {
	r, err := newRouter([]Route{
		{Filter: "devices/special/telemetry", Stream: "special", PartitionKey: "{client_id}"},
		{Filter: "devices/+/telemetry", Stream: "telemetry", PartitionKey: "{topic.1}"},
		{Filter: "devices/#", Stream: "all"},
		{Filter: "#", Stream: "catchall"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"devices/special/telemetry": "special",
		"devices/d1/telemetry":      "telemetry",
		"devices/d1/status":         "all",
		"devices":                   "all",
		"other/x":                   "catchall",
		"$SYS/anything":             "", // no route may swallow $-topics through "#"
		"$share/g/x":                "",
	}
	for topic, want := range cases {
		got := ""
		if rt := r.match(topic); rt != nil {
			got = rt.stream
		}
		if got != want {
			t.Errorf("route for %q = %q, want %q", topic, got, want)
		}
	}
	// A route without partition_key defaults to {client_id}.
	rt := r.match("devices/d1/status")
	if k, err := rt.key.Execute("devices/d1/status", "cid", "", "", nil); err != nil || k != "cid" {
		t.Errorf("default key = %q, %v; want cid", k, err)
	}
}

func TestRouterRejectsBadRoutes(t *testing.T) {
	bad := []Route{
		{Filter: "", Stream: "s"},
		{Filter: "a/#/b", Stream: "s"},
		{Filter: "a/b#", Stream: "s"},
		{Filter: "a/+b", Stream: "s"},
		{Filter: "$share/g/a", Stream: "s"},
		{Filter: "a", Stream: ""},
		{Filter: "a", Stream: "s", PartitionKey: "{nope}"},
		{Filter: "a", Stream: "s", PartitionKey: "{topic.x}"},
	}
	for _, rt := range bad {
		_, err := newRouter([]Route{{Filter: "ok", Stream: "s"}, rt})
		if !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("route %+v: err = %v, want ErrInvalidRoute", rt, err)
			continue
		}
		if !strings.Contains(err.Error(), "routes[1]") {
			t.Errorf("route %+v: error %q does not name routes[1]", rt, err)
		}
	}
}

func TestRouterUsernameOnlyWhenTemplated(t *testing.T) {
	r, err := newRouter([]Route{
		{Filter: "u/#", Stream: "s", PartitionKey: "{username}-{topic.1}"},
		{Filter: "c/#", Stream: "s", PartitionKey: "{client_id}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.match("u/x").useUsername || r.match("c/x").useUsername {
		t.Error("useUsername must be set exactly for templates with {username}")
	}
}
