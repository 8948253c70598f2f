package gateway

import (
	"context"

	"github.com/weir-gateway/weir/gateway/config"
)

type forwarderHandle interface{ Close() error }

func (d *Daemon) startForwarders(ctx context.Context, cfg *config.File) error { return nil }
