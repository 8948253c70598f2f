package api

import (
	"net"
	"strings"
)

// The Host check defends against DNS rebinding: a web page on
// evil.example that re-points its name at 127.0.0.1 makes the browser
// send same-origin requests to the gateway, with Host: evil.example. Such
// a request can be told apart only by that header, so it is checked on
// every request (/metrics and /healthz too), before anything else and
// whether or not credentials are configured.
//
// Always accepted: "localhost" and IP literals (127.0.0.1, [::1],
// 192.168.1.5 ...), with or without a port. A rebinding attack needs a
// name it controls, so an address is safe to accept, and clients that use
// --endpoint-url http://<address>:4588 need no configuration.
// api.allowed_hosts adds names: "gateway.local" matches exactly,
// "*.plant.example" matches any name under plant.example. Case is ignored.

// hostPolicy is the compiled api.allowed_hosts.
type hostPolicy struct {
	exact    map[string]bool
	suffixes []string // ".plant.example" for "*.plant.example"
}

func newHostPolicy(allowed []string) hostPolicy {
	p := hostPolicy{exact: map[string]bool{}}
	for _, h := range allowed {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if s, ok := strings.CutPrefix(h, "*"); ok {
			p.suffixes = append(p.suffixes, s)
			continue
		}
		p.exact[h] = true
	}
	return p
}

// allows reports whether a Host header value is served.
func (p hostPolicy) allows(hostport string) bool {
	host := hostOnly(hostport)
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if p.exact[host] {
		return true
	}
	for _, s := range p.suffixes {
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// hostOnly strips the port and IPv6 brackets of a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// checkAllowedHost explains what is wrong with an allowed_hosts entry, or
// returns "".
func checkAllowedHost(h string) string {
	switch {
	case h == "":
		return "is empty"
	case strings.Contains(h, "://"):
		return "must be a host name, not a URL"
	case strings.ContainsAny(h, " \t/:@"):
		return "must be a host name without port, path or spaces (the port is ignored when matching)"
	case strings.Contains(h[1:], "*") || (h[0] == '*' && !strings.HasPrefix(h, "*.")) || h == "*.":
		return `may use "*" only as a whole first label, as in "*.plant.example"`
	}
	return ""
}
