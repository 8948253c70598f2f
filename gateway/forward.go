package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/config"
)

// startForwarders starts one forwarder per configured upstream. Each runs
// until ctx ends; a failure of one is logged and never stops ingest.
func (d *Daemon) startForwarders(ctx context.Context, cfg *config.File) error {
	for _, fc := range cfg.Forwarders {
		f, err := forwarder.Open(ctx, fc, d.store, forwarder.Options{
			Logger:     d.log.With().Str("part", "forwarder").Logger(), // the forwarder adds stream and target_stream
			GatewayID:  cfg.ID(),
			Registerer: d.reg,
		})
		if err != nil {
			return fmt.Errorf("%s: forwarder %s -> %s: %w", cfg.Where("forwarders"), fc.Stream, fc.TargetStream, err)
		}
		d.fwds = append(d.fwds, f)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error().Err(err).Str("part", "forwarder").Str("stream", fc.Stream).Str("target_stream", fc.TargetStream).Msg("forwarder stopped")
			}
		}()
	}
	return nil
}

// Forwarders lists the running forwarders (for lag reports).
func (d *Daemon) Forwarders() []*forwarder.Forwarder { return d.fwds }
