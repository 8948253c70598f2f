package gateway

import (
	"context"
	"strings"
	"time"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/internal/sdnotify"
)

// notReady lists the daemon's reasons not to take traffic that the API
// cannot see for itself: storage, the MQTT listeners, a stop under way.
// The API adds failed shards and its own closing (api.Readiness).
func (d *Daemon) notReady() []string {
	var why []string
	if d.stopping.Load() {
		why = append(why, "gateway: stopping")
	}
	if d.store == nil {
		why = append(why, "storage: not open")
	}
	p := d.live.Load()
	switch {
	case p == nil:
		why = append(why, "gateway: starting")
	case p.broker == nil || !p.broker.Listening():
		why = append(why, "mqtt: listeners not accepting")
	}
	return why
}

// Ready is what /readyz answers, for callers without the API (the
// systemd watchdog runs whether or not the API is on).
func (d *Daemon) Ready() (bool, []string) {
	why := d.notReady()
	if d.store != nil {
		for _, f := range api.FailedShards(d.store) {
			why = append(why, "shard "+f.Stream+"/"+f.Shard+" failed: "+f.Error)
		}
	}
	return len(why) == 0, why
}

// notifyReady tells systemd the gateway serves and, with WatchdogSec=,
// keeps petting the watchdog at half its interval while Ready. A gateway
// that is alive but not ready (a failed shard) stops petting, so systemd
// restarts it, which reopens the data directory and its logs.
func (d *Daemon) notifyReady(ctx context.Context, n *sdnotify.Notifier) {
	if n == nil {
		return
	}
	if err := n.Notify(sdnotify.Ready + "\nSTATUS=serving"); err != nil {
		d.log.Warn().Err(err).Msg("systemd notify failed")
	}
	every := n.WatchdogInterval() / 2
	if every <= 0 {
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.watchdog(ctx, n, every)
	}()
}

func (d *Daemon) watchdog(ctx context.Context, n *sdnotify.Notifier, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	wasReady := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, why := d.Ready()
		if ok {
			if err := n.Notify(sdnotify.Watchdog); err != nil {
				d.log.Warn().Err(err).Msg("systemd watchdog notify failed")
			}
		} else if wasReady {
			// Once per change, not per tick.
			d.log.Error().Strs("not_ready", why).Msg("not ready: no longer petting the systemd watchdog")
			_ = n.Notify("STATUS=not ready: " + strings.Join(why, "; "))
		}
		wasReady = ok
	}
}
