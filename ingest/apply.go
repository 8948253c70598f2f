package ingest

import (
	"fmt"

	"github.com/weir-gateway/weir/internal/conf"
)

// Diff classifies the differences between the running mqtt section c and
// next; paths are relative to `mqtt`. Nothing in the section is live: the
// listeners are bound at start, and the limits are capabilities mochi
// hands each client at CONNECT from one shared struct that has no lock.
// (Changed certificate files under unchanged paths are re-read on their
// own, see ReloadTLS.)
func (c Config) Diff(next Config) conf.Changes {
	var cs conf.Changes
	conf.DiffFields(&cs, conf.Restart, "", c, next)
	return cs
}

// String is the listener in one line, for reload reports.
func (l ListenerConfig) String() string {
	if !l.TLS.Enabled() {
		return l.Listen
	}
	s := l.Listen + " tls cert_file=" + l.TLS.CertFile + " key_file=" + l.TLS.KeyFile
	if l.TLS.ClientCAFile != "" {
		s += fmt.Sprintf(" client_ca_file=%s require_client_cert=%t identity_from=%s",
			l.TLS.ClientCAFile, l.TLS.RequireClientCert, l.TLS.IdentityFrom)
	}
	return s
}

// String is the route in one line, for reload reports.
func (r Route) String() string {
	return fmt.Sprintf("%s → %s key %s", r.Filter, r.Stream, r.WithDefaults().PartitionKey)
}

// DiffRoutes lists the routes that differ between old and next, by
// position (order decides which route wins); paths are relative to
// `routes`. Every route change is live.
func DiffRoutes(old, next []Route) conf.Changes {
	var cs conf.Changes
	for i := range max(len(old), len(next)) {
		p := conf.Index("", i)
		switch {
		case i >= len(old):
			cs.Add(conf.Live, p, nil, next[i].String(), "")
		case i >= len(next):
			cs.Add(conf.Live, p, old[i].String(), nil, "")
		case old[i].WithDefaults() != next[i].WithDefaults():
			cs.Add(conf.Live, p, old[i].String(), next[i].String(), "")
		}
	}
	return cs
}

// Apply puts a reloaded configuration into force: the routes (and their
// partition keys) are swapped at once, so a publish that has already been
// routed is stored under the route it started with and the next one
// under the new routes; no client is disconnected. The rest of the mqtt
// section cannot change while running: Apply returns every difference,
// the routes marked live and the mqtt keys marked restart (paths relative
// to the file's root). On error (a route that does not compile) nothing
// changes.
func (b *Broker) Apply(cfg Config, routes []Route) (conf.Changes, error) {
	rt, err := newRouter(routes)
	if err != nil {
		return nil, err
	}
	var cs conf.Changes
	cs.Nest("mqtt", b.cfg.Diff(cfg.WithDefaults()))
	b.routesMu.Lock()
	defer b.routesMu.Unlock()
	cs.Nest("routes", DiffRoutes(b.routes, routes))
	b.hook.router.Store(rt)
	b.routes = append([]Route(nil), routes...)
	return cs, nil
}

// Routes returns the routes in force.
func (b *Broker) Routes() []Route {
	b.routesMu.Lock()
	defer b.routesMu.Unlock()
	return append([]Route(nil), b.routes...)
}
