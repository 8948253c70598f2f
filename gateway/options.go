package gateway

import (
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/internal/sdnotify"
)

// Options are what the command passes besides the configuration.
type Options struct {
	// Version is the release (main's -ldflags version), shown in
	// weir_build_info; "" = "dev".
	Version string
	// Systemd, if set, gets READY=1 once the gateway serves, WATCHDOG=1
	// while /readyz would answer 200, and STOPPING=1 at Close (see
	// health.go). sdnotify.FromEnv() is nil outside systemd.
	Systemd *sdnotify.Notifier
}

// StartWith is Start with Options.
func StartWith(cfg *config.File, log zerolog.Logger, opts Options) (*Daemon, error) {
	return start(cfg, log, opts)
}
