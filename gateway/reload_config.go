package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// ErrReloadRefused wraps every reason a configuration reload changed
// nothing: the new file does not load or validate (the chain holds
// config.Errors, each with file:line), or a part it names cannot be made.
var ErrReloadRefused = errors.New("gateway: configuration reload refused; the running configuration stays")

// Plan lists what reloading a gateway running with running into next
// would do, key by key, in the order of next's lines: what is applied
// live, what waits for a restart, what a reload never applies. It is what
// Reload does, computed from the two files alone (weir check-config
// --reload-from).
func Plan(running, next *config.File) conf.Changes {
	cs := topLevelDiff(running, running, next)
	cs.Nest("mqtt", running.MQTT.Diff(next.MQTT))
	cs.Nest("api", running.API.Diff(next.API))
	cs.Nest("streams", shards.DiffStreams(running.Streams, next.Streams))
	cs.Nest("routes", ingest.DiffRoutes(running.Routes, next.Routes))
	cs.Nest("forwarders", diffForwarders(running.Forwarders, next.Forwarders))
	sortByLine(cs, next)
	return cs
}

// topLevelDiff compares the keys the gateway itself owns: started is
// what runs for the keys only a restart changes, last the file last
// applied for the live ones (log.level).
func topLevelDiff(started, last, next *config.File) conf.Changes {
	var cs conf.Changes
	conf.Compare(&cs, conf.Restart, "data_dir", started.DataDir, next.DataDir)
	conf.Compare(&cs, conf.Restart, "gateway_id", started.GatewayID, next.GatewayID)
	conf.Compare(&cs, conf.Live, "log.level", last.Log.Level, next.Log.Level)
	conf.Compare(&cs, conf.Restart, "log.format", started.Log.Format, next.Log.Format)
	// The hooks re-read a file's new contents (Reload), but switching to
	// another file, or from none to one, changes who may connect at all.
	var auth conf.Changes
	conf.DiffFields(&auth, conf.Restart, "auth", started.Auth, next.Auth)
	for _, c := range auth {
		if strings.HasSuffix(c.Path, "_file") {
			c.Note = "the running hooks re-read the files they have, they do not take new ones"
		}
		cs = append(cs, c)
	}
	conf.DiffFields(&cs, conf.Restart, "durability", started.Durability, next.Durability)
	conf.DiffFields(&cs, conf.Restart, "encryption", started.Encryption, next.Encryption)
	conf.DiffFields(&cs, conf.Restart, "uplink", started.Uplink, next.Uplink)
	if started.MQTT.MaxPacketSize == next.MQTT.MaxPacketSize && started.MQTTPacketSize() != next.MQTTPacketSize() {
		cs.Add(conf.Restart, "mqtt.max_packet_size", started.MQTTPacketSize(), next.MQTTPacketSize(),
			"derived from the largest streams[].max_record_size; the store takes the new record size now, MQTT at restart")
	}
	return cs
}

// sortByLine orders changes as the keys appear in f, so a report reads
// like the file (a removed entry, reported at its list, comes first).
func sortByLine(cs conf.Changes, f *config.File) {
	slices.SortStableFunc(cs, func(a, b conf.Change) int { return f.Line(a.Path) - f.Line(b.Path) })
}

// reloadConfig reads the configuration file again and applies it: all or
// nothing as far as the file allows. Everything that can fail is done
// before anything changes: the file is parsed and validated whole, and new
// forwarders are built (not started); then new streams are created, and
// only if that worked are the stream limits, routes, read limits, log
// level and forwarder set changed. Keys that need a restart keep their
// running value and are reported, one line each with the new value's
// file:line.
func (d *Daemon) reloadConfig() (conf.Changes, error) {
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	path := d.started.Path()
	log := d.log.With().Str("part", "reload").Str("config", path).Logger()
	next, err := config.Load(path)
	if err != nil {
		return nil, d.refuse(log, err)
	}
	plan, err := d.planForwarders(next)
	if err != nil {
		return nil, d.refuse(log, err)
	}
	cs := topLevelDiff(d.started, d.cfg, next)
	storeCS, err := d.store.Apply(next.Streams)
	if err != nil {
		// Nothing else has changed yet; the forwarders built for the plan
		// never ran.
		return nil, d.refuse(log, fmt.Errorf("%s: %w", next.Where("streams"), err))
	}
	cs = append(cs, storeCS...)
	brokerCS, err := d.broker.Apply(next.MQTT, next.Routes)
	if err != nil {
		// Not reachable with a validated file (its routes compile); said
		// loudly if it ever is, because the streams have changed by now.
		log.Error().Err(err).Msg("config reload: routes not applied; the streams' settings were")
		return storeCS, fmt.Errorf("%w: %w", ErrReloadRefused, err)
	}
	cs = append(cs, brokerCS...)
	if d.api != nil {
		cs = append(cs, d.api.Apply(next.API)...)
	} else {
		cs.Nest("api", d.started.API.Diff(next.API))
	}
	if next.Log.Level != d.cfg.Log.Level {
		SetLogLevel(next.Log.Level)
	}
	var fwdCS conf.Changes
	fwdCS.Nest("forwarders", diffForwarders(d.cfg.Forwarders, next.Forwarders))
	d.applyForwarders(plan)
	cs = append(cs, fwdCS...)
	d.cfg = next
	sortByLine(cs, next)
	logChanges(log, next, cs)
	return cs, nil
}

// refuse logs why a reload changed nothing, one line per error so that
// each file:line stands on its own, and returns the error.
func (d *Daemon) refuse(log zerolog.Logger, err error) error {
	var es config.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			log.Error().Str("at", fmt.Sprintf("%s:%d", e.File, e.Line)).Str("key", e.Path).Str("error", e.Msg).
				Msg("config reload: invalid configuration")
		}
	} else {
		log.Error().Err(err).Msg("config reload: cannot apply")
	}
	log.Error().Msg("config reload refused: the running configuration stays in force, unchanged")
	return fmt.Errorf("%w: %w", ErrReloadRefused, err)
}

// logChanges writes one line per change and a summary.
func logChanges(log zerolog.Logger, f *config.File, cs conf.Changes) {
	for _, c := range cs {
		var e *zerolog.Event
		var msg string
		switch c.Effect {
		case conf.Live:
			e, msg = log.Info(), "config reload: applied"
		case conf.Restart:
			e, msg = log.Warn(), "config reload: needs a restart; the running value stays until then"
		default:
			e, msg = log.Warn(), "config reload: not applied"
		}
		e = e.Str("key", c.Path).Str("at", f.Where(c.Path)).Str("old", c.Old).Str("new", c.New)
		if c.Note != "" {
			e = e.Str("note", c.Note)
		}
		e.Msg(msg)
	}
	log.Info().Int("live", len(cs.Only(conf.Live))).Int("restart_needed", len(cs.Only(conf.Restart))).
		Int("not_applied", len(cs.Only(conf.Kept))).Msg("config reloaded")
}

// SetLogLevel sets the level of every logger in the process (zerolog's
// global level). The command makes its loggers at trace and calls this at
// start, so a reload can lower the level as well as raise it.
func SetLogLevel(level string) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.SetGlobalLevel(lvl)
}
