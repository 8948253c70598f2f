package gateway

import (
	"context"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/gateway/console"
	"github.com/weir-gateway/weir/ingest"
)

// startConsole mounts the web console on the API listener (when the API
// is on) and samples for it until ctx ends. It reads the parts through
// d.live, as the API's status hooks do.
func (d *Daemon) startConsole(ctx context.Context, cfg *config.File) error {
	if d.api == nil {
		return nil
	}
	secret, err := iteratorKey(cfg.DataDir, d.log)
	if err != nil {
		return err
	}
	c := console.New(console.Sources{
		Store:   d.store,
		DataDir: cfg.DataDir,
		Clients: func() []ingest.ClientInfo {
			if p := d.live.Load(); p != nil && p.broker != nil {
				return p.broker.Clients()
			}
			return nil
		},
		Ingest: func() ingest.Stats {
			if p := d.live.Load(); p != nil && p.broker != nil {
				return p.broker.Stats()
			}
			return ingest.Stats{}
		},
		Forwarders: func() []console.Forwarder {
			p := d.live.Load()
			if p == nil {
				return nil
			}
			out := make([]console.Forwarder, len(p.fwds))
			for i, f := range p.fwds {
				out[i] = f
			}
			return out
		},
		Auth: d.api,
	}, console.Options{Logger: d.log.With().Str("part", "console").Logger(), Secret: secret})
	d.api.Handle("/console/", c.Handler())
	d.api.Handle("/console", c.Handler())
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		c.Run(ctx)
	}()
	return nil
}

var _ console.Forwarder = (*forwarder.Forwarder)(nil)
