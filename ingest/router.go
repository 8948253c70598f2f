package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weir-gateway/weir/internal/conf"
)

// route is a Route made ready for the hot path: the filter split into
// levels once, the partition-key template parsed once.
type route struct {
	index  int // position in the configuration, for logs
	filter string
	levels []string
	stream string
	key    KeyTemplate
	// useUsername: the key template has {username}.
	useUsername bool
}

// streamName is the route's stream, "" for no route (a publish refused
// before routing).
func (r *route) streamName() string {
	if r == nil {
		return ""
	}
	return r.stream
}

// router picks the route for a topic. Routes are tried in configuration
// order and the first whose filter matches wins, so an operator can put a
// specific filter before a catch-all.
type router struct {
	routes []route
}

func newRouter(routes []Route) (*router, error) {
	r := &router{routes: make([]route, 0, len(routes))}
	for i, rt := range routes {
		rt = rt.WithDefaults()
		if errs := rt.Validate(); len(errs) > 0 {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRoute, errors.Join(conf.Prefix(conf.Index("routes", i), errs)...))
		}
		key, err := ParseKeyTemplate(rt.PartitionKey)
		if err != nil {
			return nil, fmt.Errorf("%w: routes[%d].partition_key: %w", ErrInvalidRoute, i, err)
		}
		r.routes = append(r.routes, route{
			index:       i,
			filter:      rt.Filter,
			levels:      strings.Split(rt.Filter, "/"),
			stream:      rt.Stream,
			key:         key,
			useUsername: templateUses(key, ktUsername),
		})
	}
	return r, nil
}

// templateUses reports whether t has a placeholder of kind k, so the hook
// converts the CONNECT username (a []byte in mochi) to a string only for
// routes that need it: that conversion allocates on every publish.
func templateUses(t KeyTemplate, k ktKind) bool {
	for _, p := range t.parts {
		if p.kind == k {
			return true
		}
	}
	return false
}

// match returns the first route whose filter matches topic, or nil.
func (r *router) match(topic string) *route {
	for i := range r.routes {
		if matchLevels(r.routes[i].levels, topic) {
			return &r.routes[i]
		}
	}
	return nil
}

// matchLevels reports whether topic matches the filter split into levels,
// without allocating: "+" matches exactly one level (possibly empty), "#"
// matches the rest including the parent level ("a/#" matches "a"), and a
// filter starting with a wildcard never matches a topic starting with "$"
// (MQTT 5 §4.7.2), so a catch-all route does not swallow "$"-topics.
func matchLevels(levels []string, topic string) bool {
	if len(levels) == 0 {
		return false
	}
	if topic != "" && topic[0] == '$' && (levels[0] == "+" || levels[0] == "#") {
		return false
	}
	rest, more := topic, true
	for _, lv := range levels {
		if lv == "#" {
			return true
		}
		if !more {
			return false
		}
		var cur string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			cur, rest = rest[:i], rest[i+1:]
		} else {
			cur, rest, more = rest, "", false
		}
		if lv != "+" && lv != cur {
			return false
		}
	}
	return !more
}
