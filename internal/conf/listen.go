package conf

import (
	"net"
	"strconv"
	"strings"
)

// CheckListen reports whether addr is a usable listen address: host:port
// with a numeric port 0..65535 (0 picks a free port, which tests use). An
// empty host means every interface.
func CheckListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &ValueError{Type: "listen address", Value: addr, Reason: "must be host:port, e.g. 127.0.0.1:1883 or [::1]:1883"}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return &ValueError{Type: "listen address", Value: addr, Reason: "port must be a number 0..65535"}
	}
	if strings.ContainsAny(host, " \t/") {
		return &ValueError{Type: "listen address", Value: addr, Reason: "host must be an IP address or a host name"}
	}
	return nil
}

// IsLoopback reports whether a listener on addr can only be reached from
// this machine: a loopback IP or "localhost". An empty host, a wildcard or
// any other name counts as reachable from the network, because resolving
// names here would make the answer depend on the machine's DNS.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
