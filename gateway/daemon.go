package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/ingest/auth"
	"github.com/weir-gateway/weir/internal/sdnotify"
	"github.com/weir-gateway/weir/shards"
)

// Daemon is a running gateway.
type Daemon struct {
	log    zerolog.Logger
	store  *shards.Store
	scaler *shards.Autoscaler // splits and merges on-demand streams
	broker *ingest.Broker
	api    *api.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	live   atomic.Pointer[liveParts] // for the API's status hooks, see status.go
	reload *reloader
	creds  *auth.Store // nil without auth.password_file and auth.acl_file

	// Forwarders: the set changes on reload (forward.go).
	fwdCtx    context.Context
	gatewayID string
	uplink    *forwarder.Uplink // shared by every forwarder; nil without uplink.max_bytes_per_sec
	fwdMu     sync.Mutex        // guards fwds and closed
	fwds      []*forwarder.Forwarder
	closed    bool

	// Configuration reload (reload_config.go). started is what runs for
	// every key a reload cannot change; cfg is the file last applied.
	cfgMu   sync.Mutex // serialises reloads
	started *config.File
	cfg     *config.File

	reg      *prometheus.Registry // every part's metrics; see metrics.go
	systemd  *sdnotify.Notifier   // nil outside systemd; see health.go
	stopping atomic.Bool
}

// Start opens the data directory and starts every listener and forwarder
// the configuration names. On error everything started so far is stopped.
func Start(cfg *config.File, log zerolog.Logger) (*Daemon, error) {
	return start(cfg, log, Options{})
}

func start(cfg *config.File, log zerolog.Logger, opts Options) (d *Daemon, err error) {
	d = &Daemon{log: log, started: cfg, cfg: cfg, reg: newRegistry(opts.Version, cfg.DataDir), systemd: opts.Systemd}
	defer func() {
		if err != nil {
			d.Close(context.Background())
		}
	}()
	if err := d.openStore(cfg); err != nil {
		return d, err
	}
	if err := d.startAPI(cfg); err != nil {
		return d, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if err := d.startAutoscaler(ctx); err != nil {
		return d, err
	}
	if err := d.startForwarders(ctx, cfg); err != nil {
		return d, err
	}
	if err := d.startBroker(cfg); err != nil {
		return d, err
	}
	d.live.Store(&liveParts{broker: d.broker, fwds: d.fwds})
	if err := d.startConsole(ctx, cfg); err != nil {
		return d, err
	}
	d.startReloader(ctx, cfg)
	ev := log.Info().Str("mqtt", d.broker.Addr().String()).Str("data_dir", cfg.DataDir).Str("fsync", cfg.Durability.Fsync)
	if d.api != nil {
		ev = ev.Str("api", d.api.Addr().String())
	}
	ev.Msg("weir ready")
	d.notifyReady(ctx, d.systemd)
	return d, nil
}

// openStore opens the streams in the data directory.
func (d *Daemon) openStore(cfg *config.File) (err error) {
	d.store, err = shards.Open(cfg.DataDir, shards.Options{
		Durability:    cfg.Durability,
		KeysDir:       cfg.Encryption.KeysDir,
		Streams:       cfg.Streams,
		DefaultStream: shards.StreamConfig{}.WithDefaults(),
		Logger:        d.log.With().Str("part", "shards").Logger(),
		Registerer:    d.reg,
	})
	return err
}

// startAutoscaler runs the on-demand autoscaler until ctx ends. It runs
// for every gateway: a stream may become on-demand at any time, by
// CreateStream, UpdateStreamMode or a reload.
func (d *Daemon) startAutoscaler(ctx context.Context) (err error) {
	d.scaler, err = shards.NewAutoscaler(d.store, shards.AutoscaleOptions{
		Logger: d.log.With().Str("part", "autoscale").Logger(), Registerer: d.reg})
	if err != nil {
		return err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.scaler.Run(ctx)
	}()
	return nil
}

// startAPI starts the HTTP API, if the configuration has one.
func (d *Daemon) startAPI(cfg *config.File) error {
	if cfg.API.Listen == "" {
		return nil
	}
	secret, err := iteratorKey(cfg.DataDir, d.log)
	if err != nil {
		return err
	}
	d.api, err = api.New(cfg.API, d.store, api.Options{Logger: d.log.With().Str("part", "api").Logger(), Secret: secret,
		Forwarders: d.forwarderStatus, Registry: d.reg, NotReady: d.notReady})
	if err != nil {
		return err
	}
	return d.api.Start()
}

// startBroker reads the auth files and starts the MQTT broker.
func (d *Daemon) startBroker(cfg *config.File) (err error) {
	var maxRecord int64
	for _, s := range cfg.Streams {
		maxRecord = max(maxRecord, s.MaxRecordSize.Bytes())
	}
	mqttOpts := ingest.Options{
		Logger:            d.log.With().Str("part", "mqtt").Logger(),
		MaxRecordSize:     maxRecord,
		ClientIDMustMatch: cfg.Auth.ClientIDMustMatch,
		Registerer:        d.reg,
	}
	if cfg.Auth.PasswordFile != "" || cfg.Auth.ACLFile != "" {
		if d.creds, err = auth.NewStore(cfg.Auth); err != nil {
			return err
		}
		// Typed nils would read as "configured": set only what exists.
		if cfg.Auth.PasswordFile != "" {
			mqttOpts.Passwords = d.creds
		}
		if cfg.Auth.ACLFile != "" {
			mqttOpts.ACL = d.creds
		}
	}
	d.broker, err = ingest.New(cfg.MQTT, cfg.Routes, d.store, mqttOpts)
	if err != nil {
		return err
	}
	return d.broker.Start()
}

// startReloader watches the files the running parts can re-read, until
// ctx ends.
func (d *Daemon) startReloader(ctx context.Context, cfg *config.File) {
	d.reload = newReloader(d.log.With().Str("part", "reload").Logger(), reloadInterval, d.reloadables(cfg))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.reload.run(ctx)
	}()
}

// CheckFiles reads the credential and ACL files cfg names, as Start
// would, and returns their errors (each with FILE:LINE).
func CheckFiles(cfg *config.File) error {
	var errs []error
	if cfg.Auth.PasswordFile != "" || cfg.Auth.ACLFile != "" {
		_, err := auth.NewStore(cfg.Auth)
		errs = append(errs, err)
	}
	if cfg.API.Listen != "" && cfg.API.CredentialsFile != "" {
		errs = append(errs, api.CheckCredentialsFile(cfg.API.CredentialsFile))
	}
	return errors.Join(errs...)
}

// Reload is SIGHUP: it re-reads the configuration file the gateway was
// started with (when it was started from one, see config.File.Path) and
// applies what can change while running (reload_config.go), then re-reads
// the credential, ACL and certificate files. An invalid file is logged
// with every error and returned, and the running configuration stays
// whole; a bad credential file leaves its old contents in force. Those
// files are also watched and reloaded when they change.
func (d *Daemon) Reload() error {
	var errs []error
	if d.started.Path() != "" {
		_, err := d.reloadConfig()
		errs = append(errs, err)
	} else {
		d.log.Info().Str("part", "reload").Str("config", d.started.Name()).
			Msg("no configuration file to re-read; restart with --config FILE to change settings")
	}
	if d.reload != nil {
		errs = append(errs, d.reload.ReloadAll())
	}
	return errors.Join(errs...)
}

// reloadables lists the parts that re-read their files, with the files.
func (d *Daemon) reloadables(cfg *config.File) []reloadable {
	var parts []reloadable
	if d.creds != nil {
		parts = append(parts, reloadable{name: "auth", files: existing(cfg.Auth.PasswordFile, cfg.Auth.ACLFile),
			reload: func() error { _, err := d.creds.Reload(); return err }})
	}
	var tlsFiles []string
	for _, l := range cfg.MQTT.Listeners {
		tlsFiles = append(tlsFiles, existing(l.TLS.CertFile, l.TLS.KeyFile, l.TLS.ClientCAFile)...)
	}
	if len(tlsFiles) > 0 {
		parts = append(parts, reloadable{name: "mqtt-tls", files: tlsFiles, reload: d.broker.ReloadTLS})
	}
	if apiFiles := existing(cfg.API.CredentialsFile, cfg.API.TLS.CertFile, cfg.API.TLS.KeyFile); d.api != nil && len(apiFiles) > 0 {
		parts = append(parts, reloadable{name: "api", files: apiFiles, reload: d.api.ReloadCredentials})
	}
	return parts
}

// Store gives in-process users (tests, the bench command) the store.
func (d *Daemon) Store() *shards.Store { return d.store }

// MQTTAddr is the broker's bound address.
func (d *Daemon) MQTTAddr() net.Addr { return d.broker.Addr() }

// Registry is the registry /metrics serves; every part registers on it.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// APIAddr is the API's bound address, or nil when it is off.
func (d *Daemon) APIAddr() net.Addr {
	if d.api == nil {
		return nil
	}
	return d.api.Addr()
}

// Close stops taking data, lets commits in flight finish, and closes the
// store so that everything acknowledged is synced.
func (d *Daemon) Close(ctx context.Context) error {
	d.stopping.Store(true)
	_ = d.systemd.Notify(sdnotify.Stopping)
	var errs []error
	if d.broker != nil {
		errs = append(errs, d.broker.Close(ctx))
	}
	if d.api != nil {
		errs = append(errs, d.api.Close(ctx))
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.fwdMu.Lock()
	d.closed = true // a reload in progress starts nothing more
	fwds := d.fwds
	d.fwdMu.Unlock()
	for _, f := range fwds {
		errs = append(errs, f.Close())
	}
	d.wg.Wait()
	if d.scaler != nil {
		d.scaler.Close()
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	return errors.Join(errs...)
}
