package ingest

import (
	"sort"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// ClientInfo is one connected MQTT client as the console lists it.
type ClientInfo struct {
	ID       string
	Identity string // who it logged in as (identity.go); "" = anonymous
	Username string
	Remote   string
	Listener string // the listener's id, e.g. "tcp" or "tls"
	Protocol string // "MQTT 3.1.1" or "MQTT 5"; "+TLS" when over TLS
	// Since is when the TCP connection was accepted.
	Since time.Time
	// MessagesIn counts the publishes the ingest hook saw from this
	// connection, Refusals those of them that were not stored.
	MessagesIn, Refusals uint64
	LastPublish          time.Time // zero before the first publish
}

// clientUsage are one connection's publish counters, kept on the
// connection (not in a map keyed by client id) so they go with it.
type clientUsage struct {
	since      time.Time
	in, refuse atomic.Uint64
	last       atomic.Int64 // unix nanoseconds of the last publish
}

func usageOf(cl *mqtt.Client) *clientUsage {
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		return &tc.usage
	}
	return nil
}

// notePublish counts a publish the hook sees from cl.
func notePublish(cl *mqtt.Client, now time.Time) {
	if u := usageOf(cl); u != nil {
		u.in.Add(1)
		u.last.Store(now.UnixNano())
	}
}

// noteRefusal counts a publish of cl that was not stored.
func noteRefusal(cl *mqtt.Client) {
	if u := usageOf(cl); u != nil {
		u.refuse.Add(1)
	}
}

// Clients lists the connected clients (sessions mochi keeps for clients
// that went away are left out), sorted by client id. It copies the
// broker's client table once: about 200 bytes a client.
func (b *Broker) Clients() []ClientInfo {
	all := b.server.Clients.GetAll()
	out := make([]ClientInfo, 0, len(all))
	for _, cl := range all {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		ci := ClientInfo{
			ID: cl.ID, Identity: clientIdentity(cl), Username: string(cl.Properties.Username),
			Remote: cl.Net.Remote, Listener: cl.Net.Listener, Protocol: "MQTT 3.1.1",
		}
		if cl.Properties.ProtocolVersion >= 5 {
			ci.Protocol = "MQTT 5"
		} else if cl.Properties.ProtocolVersion == 3 {
			ci.Protocol = "MQTT 3.1"
		}
		if tc, ok := cl.Net.Conn.(*trackedConn); ok {
			if tc.l.tls != nil {
				ci.Protocol += "+TLS"
			}
			u := &tc.usage
			ci.Since, ci.MessagesIn, ci.Refusals = u.since, u.in.Load(), u.refuse.Load()
			if ns := u.last.Load(); ns != 0 {
				ci.LastPublish = time.Unix(0, ns)
			}
		}
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
