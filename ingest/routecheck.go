package ingest

import "strings"

// Matches reports whether a publish to topic takes this route's filter
// (the broker's own matching: "+" one level, "#" the rest, wildcards never
// match "$"-topics). `weir check-config --route` uses it to dry-run a topic.
func (r Route) Matches(topic string) bool {
	return matchLevels(strings.Split(r.Filter, "/"), topic)
}

// MatchRoute returns the index of the route a publish to topic takes (the
// first whose filter matches, as the broker decides), or -1 for none.
func MatchRoute(routes []Route, topic string) int {
	for i, r := range routes {
		if r.Matches(topic) {
			return i
		}
	}
	return -1
}

// Shadow is a route that can never match because an earlier route's
// filter matches every topic it matches.
type Shadow struct {
	Route, By int // indexes into the routes
}

// ShadowedRoutes lists every route covered by an earlier one, naming the
// first such earlier route. Exact duplicate filters are left out: Validate
// already refuses them.
func ShadowedRoutes(routes []Route) []Shadow {
	var out []Shadow
	for j := range routes {
		for i := range j {
			if routes[i].Filter != routes[j].Filter && FilterCovers(routes[i].Filter, routes[j].Filter) {
				out = append(out, Shadow{Route: j, By: i})
				break
			}
		}
	}
	return out
}

// FilterCovers reports whether every topic that filter b matches is also
// matched by filter a (both valid MQTT topic filters).
func FilterCovers(a, b string) bool {
	al, bl := strings.Split(a, "/"), strings.Split(b, "/")
	// A filter starting with a literal matches "$"-topics that a leading
	// wildcard never does.
	if wild(al[0]) && !wild(bl[0]) && strings.HasPrefix(bl[0], "$") {
		return false
	}
	for i, lv := range al {
		if lv == "#" {
			return true
		}
		if i >= len(bl) || bl[i] == "#" {
			return false
		}
		if lv != "+" && lv != bl[i] {
			return false
		}
	}
	return len(al) == len(bl)
}

func wild(level string) bool { return level == "+" || level == "#" }
