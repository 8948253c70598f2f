package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/internal/conf"
)

// startForwarders starts one forwarder per configured sink (kinesis,
// http, mqtt), all sharing the uplink budget (forwarders a reload starts
// share it too; uplink: itself changes at restart). Each runs until ctx
// ends; a failure of one is logged and never stops ingest.
func (d *Daemon) startForwarders(ctx context.Context, cfg *config.File) error {
	d.fwdCtx, d.gatewayID = ctx, cfg.ID()
	d.uplink = forwarder.NewUplink(cfg.Uplink)
	for _, fc := range cfg.Forwarders {
		f, err := d.openForwarder(fc)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Where("forwarders"), err)
		}
		d.fwds = append(d.fwds, f)
		d.runForwarder(f)
	}
	return nil
}

func (d *Daemon) openForwarder(fc forwarder.Config) (*forwarder.Forwarder, error) {
	f, err := forwarder.Open(d.fwdCtx, fc, d.store, forwarder.Options{
		Logger:     d.log.With().Str("part", "forwarder").Logger(), // the forwarder adds stream and target_stream
		GatewayID:  d.gatewayID,
		Uplink:     d.uplink,
		Registerer: d.reg, // while it runs: a replacement registers after the old one stopped
	})
	if err != nil {
		return nil, fmt.Errorf("forwarder %s -> %s: %w", fc.Stream, fc.Target(), err)
	}
	return f, nil
}

func (d *Daemon) runForwarder(f *forwarder.Forwarder) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := f.Run(d.fwdCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error().Err(err).Str("part", "forwarder").Str("stream", f.Config().Stream).Str("target_stream", f.Config().Target()).
				Msg("forwarder stopped")
		}
	}()
}

// Forwarders lists the running forwarders (for lag reports).
func (d *Daemon) Forwarders() []*forwarder.Forwarder {
	d.fwdMu.Lock()
	defer d.fwdMu.Unlock()
	return slices.Clone(d.fwds)
}

// upstream names a forwarder: its checkpoint is "forwarder:<name>" on
// its local stream (name defaults to target_stream for kinesis), so two
// entries with the same pair are the same forwarder whatever else changed.
type upstream struct{ stream, target string }

func upstreamOf(c forwarder.Config) upstream {
	c.Defaults()
	return upstream{c.Stream, c.SinkName()}
}

func (u upstream) String() string { return u.stream + " → " + u.target }

// diffForwarders lists the forwarders added, removed or changed between
// old and next, matched by stream and target; paths are relative to
// `forwarders` and index next (a removed one is reported at `forwarders`).
// All of it is live.
func diffForwarders(old, next []forwarder.Config) conf.Changes {
	var cs conf.Changes
	prev := make(map[upstream]forwarder.Config, len(old))
	for _, c := range old {
		prev[upstreamOf(c)] = c.WithDefaults()
	}
	kept := map[upstream]bool{}
	for i, c := range next {
		u := upstreamOf(c)
		kept[u] = true
		p, ok := prev[u]
		switch {
		case !ok:
			cs.Add(conf.Live, conf.Index("", i), nil, u.String(), "started")
		case !reflect.DeepEqual(p, c.WithDefaults()):
			was, now := fieldDiff(p, c.WithDefaults())
			cs.Add(conf.Live, conf.Index("", i), was, now, "restarted: the old one commits its watermark first")
		}
	}
	for _, c := range old {
		if u := upstreamOf(c); !kept[u] {
			cs.Add(conf.Live, "", u.String(), nil, "stopped; its checkpoint stays, so adding it back resumes where it was")
		}
	}
	return cs
}

// fieldDiff formats the fields of two values of one struct type that
// differ, as "key=value ..." with the YAML keys.
func fieldDiff(a, b any) (string, string) {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var was, now []string
	for i := range va.NumField() {
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if reflect.DeepEqual(x, y) { // == would panic on the slices of a filter or headers
			continue
		}
		key, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("yaml"), ",")
		was = append(was, fmt.Sprintf("%s=%v", key, x))
		now = append(now, fmt.Sprintf("%s=%v", key, y))
	}
	return strings.Join(was, " "), strings.Join(now, " ")
}

// fwdPlan is a prepared change of the forwarder set: the new forwarders
// are built (not running) so that one that cannot be made refuses the
// reload before anything has changed.
type fwdPlan struct {
	next  []*forwarder.Forwarder // the set after the change, in file order
	stop  []*forwarder.Forwarder // running ones removed or replaced
	start []*forwarder.Forwarder // in next, to be run
}

func (d *Daemon) planForwarders(next *config.File) (fwdPlan, error) {
	d.fwdMu.Lock()
	running := map[upstream]*forwarder.Forwarder{}
	for _, f := range d.fwds {
		running[upstreamOf(f.Config())] = f
	}
	d.fwdMu.Unlock()
	var p fwdPlan
	used := map[*forwarder.Forwarder]bool{}
	for i, fc := range next.Forwarders {
		if f, ok := running[upstreamOf(fc)]; ok && reflect.DeepEqual(f.Config(), fc.WithDefaults()) {
			p.next = append(p.next, f)
			used[f] = true
			continue
		}
		f, err := d.openForwarder(fc)
		if err != nil {
			return fwdPlan{}, fmt.Errorf("%s: %w", next.Where(conf.Index("forwarders", i)), err)
		}
		p.next = append(p.next, f)
		p.start = append(p.start, f)
	}
	for _, f := range running {
		if !used[f] {
			p.stop = append(p.stop, f)
		}
	}
	return p, nil
}

// applyForwarders stops the forwarders leaving the set (each commits its
// watermark before Close returns, so a replacement with the same
// checkpoint resumes exactly there) and then starts the new ones. The
// unchanged ones keep running untouched. After Close has begun nothing is
// started.
func (d *Daemon) applyForwarders(p fwdPlan) {
	for _, f := range p.stop {
		if err := f.Close(); err != nil {
			d.log.Error().Err(err).Str("part", "forwarder").Str("stream", f.Config().Stream).Str("target_stream", f.Config().Target()).
				Msg("forwarder stopped by reload: final commit failed")
		}
	}
	d.fwdMu.Lock()
	defer d.fwdMu.Unlock()
	if d.closed {
		return
	}
	d.fwds = p.next
	for _, f := range p.start {
		d.runForwarder(f)
	}
	d.live.Store(&liveParts{broker: d.broker, fwds: slices.Clone(d.fwds)})
}
