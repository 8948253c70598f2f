package forwarder

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// Options are the forwarder's collaborators and tuning; the zero value
// works.
type Options struct {
	Logger zerolog.Logger
	// GatewayID names this gateway in JSON envelopes; default: hostname.
	GatewayID string
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Client replaces the Kinesis client built from the config (tests use
	// the real SDK client against kinesalite, or a fake). If it also
	// implements ListShardsAPI, throttling is paced per upstream shard.
	Client PutRecordsAPI
	// HTTPClient and LoadOptions are used to build the client when Client
	// is nil (LoadOptions come after the forwarder's own, e.g. static
	// credentials for tests).
	HTTPClient  aws.HTTPClient
	LoadOptions []func(*config.LoadOptions) error

	// ProbeInterval is the longest wait between probes while paused by a
	// permanent error (the waits start at 1s and double); default 30s.
	ProbeInterval time.Duration
	// BackoffBase and BackoffCap shape the retry backoff (full jitter);
	// defaults 100ms and 30s.
	BackoffBase, BackoffCap time.Duration
	// CommitInterval is how often the watermarks are checkpointed;
	// default 200ms.
	CommitInterval time.Duration
	// ShardMapInterval is how often the local shard map is re-read (to
	// notice reshards); default 250ms.
	ShardMapInterval time.Duration
	// UpstreamMapInterval is how often the upstream shard map is listed
	// for pacing; default 5m.
	UpstreamMapInterval time.Duration
	// MaxBufferedRecords and MaxBufferedBytes bound what is read ahead of
	// the acknowledgements; defaults 50,000 records and 16 MiB.
	MaxBufferedRecords int
	MaxBufferedBytes   int
	// MaxAhead bounds how far reading may run ahead of a shard's watermark
	// (acknowledged records included), and so what a crash makes the
	// forwarder resend when one key is stuck while others go on; default
	// 200,000 records.
	MaxAhead int
	// DrainTimeout is how long Close waits for requests in flight before
	// abandoning them (they are resent after a restart); default 2s.
	DrainTimeout time.Duration
	// Seed seeds the backoff jitter; 0 picks one at random.
	Seed uint64
	// Uplink is the budget shared with the daemon's other forwarders
	// (NewUplink); nil = none.
	Uplink *Uplink
	// Registerer, if set, gets the forwarder's metrics (labelled with its
	// stream and target stream) while Run runs.
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.GatewayID == "" {
		o.GatewayID, _ = os.Hostname()
		if o.GatewayID == "" {
			o.GatewayID = "weir"
		}
	}
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setDur(&o.ProbeInterval, 30*time.Second)
	setDur(&o.BackoffBase, 100*time.Millisecond)
	setDur(&o.BackoffCap, 30*time.Second)
	setDur(&o.CommitInterval, 200*time.Millisecond)
	setDur(&o.ShardMapInterval, 250*time.Millisecond)
	setDur(&o.UpstreamMapInterval, 5*time.Minute)
	setDur(&o.DrainTimeout, 2*time.Second)
	if o.MaxBufferedRecords <= 0 {
		o.MaxBufferedRecords = 50_000
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = 16 << 20
	}
	if o.MaxAhead <= 0 {
		o.MaxAhead = 200_000
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
}

// Lag is a forwarder's progress report.
type Lag struct {
	Records   int64         // local records not yet acknowledged upstream
	Bytes     int64         // their payload bytes (read ones exactly, unread ones estimated from the average)
	OldestAge time.Duration // age of the oldest of them
	State     State
	LastError string
	Sent      int64 // local records acknowledged upstream (each counted once)
	Resent    int64 // record transmissions after the first (retries)
	Lost      int64 // records retention deleted before they were sent, or too large for the sink
	Filtered  int64 // records the sink's filter passed over (not sent, not lag)
}

// Forwarder replays one local stream to one sink: an upstream Kinesis
// stream, an HTTP endpoint or a remote MQTT broker.
type Forwarder struct {
	cfg      Config
	opts     Options
	log      zerolog.Logger
	src      Source
	ckpt     CheckpointStore
	sink     sink
	consumer string
	metrics  *collector

	closing   chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex // guards started, runErr, snap
	started   bool
	done      chan struct{}
	finalErr  error
	snap      snapshot
	ctl       control // control.go
}

// New makes a forwarder for cfg reading src and keeping its watermarks in
// ckpt under the consumer name "forwarder:<name>" (Config.Consumer; for
// kinesis "forwarder:<target_stream>" unless name is set). Nothing
// happens until Run.
func New(cfg Config, src Source, ckpt CheckpointStore, opts Options) (*Forwarder, error) {
	cfg = cfg.WithDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("forwarder: invalid config: %w", errors.Join(errs...))
	}
	opts.defaults()
	log := opts.Logger.With().Str("stream", cfg.Stream).Str("target_stream", cfg.Target()).Logger()
	if cfg.Kind != KindKinesis {
		log = log.With().Str("sink", cfg.SinkName()).Logger()
	}
	f := &Forwarder{
		cfg: cfg, opts: opts, src: src, ckpt: ckpt, log: log,
		consumer: cfg.Consumer(),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	f.ctl.init()
	// The SDK's own lines (credential chain, IMDS) go to this logger, not
	// to its default stderr logger.
	opts.LoadOptions = append([]func(*config.LoadOptions) error{config.WithLogger(sdkLogger{log})}, opts.LoadOptions...)
	s, err := newSink(cfg, opts, log)
	if err != nil {
		return nil, err
	}
	f.sink = s
	f.metrics = newCollector(f)
	return f, nil
}

// withSink replaces the sink New built; tests drive the engine with their
// own sinks through it.
func (f *Forwarder) withSink(s sink) *Forwarder {
	f.sink.close()
	f.sink = s
	return f
}

// newSink builds the sink of cfg.Kind.
func newSink(cfg Config, opts Options, log zerolog.Logger) (sink, error) {
	switch cfg.Kind {
	case KindHTTP:
		return newHTTPSink(cfg, opts)
	case KindMQTT:
		return newMQTTSink(cfg, opts, log)
	case KindS3:
		return newS3Sink(cfg, opts, log)
	}
	return newKinesisSink(cfg, opts)
}

// Open is New for the daemon: it reads cfg.Stream from store and keeps
// its watermarks in the store's checkpoints.
func Open(ctx context.Context, cfg Config, store *shards.Store, opts Options) (*Forwarder, error) {
	_ = ctx // the SDK's config loading reads only local files and the environment
	return New(cfg, StoreSource(store, cfg.Stream), store.Checkpoints(), opts)
}

// Consumer is the checkpoint consumer name the forwarder commits under.
func (f *Forwarder) Consumer() string { return f.consumer }

// Config returns the effective configuration.
func (f *Forwarder) Config() Config { return f.cfg }

// Run forwards until ctx is done or Close is called, then lets requests in
// flight finish (up to DrainTimeout) and commits the watermarks. It
// returns ctx.Err(), nil after Close, or an error that stopped it.
func (f *Forwarder) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("forwarder: Run called twice")
	}
	select {
	case <-f.closing:
		f.mu.Unlock()
		return ErrClosed
	default:
	}
	f.started = true
	f.mu.Unlock()
	defer close(f.done)
	// Registered while it runs, and gone before Close returns: a reload
	// builds a changed forwarder's replacement before it stops the old one,
	// and the two have the same labels.
	if r := f.opts.Registerer; r != nil {
		if err := r.Register(f.metrics); err != nil {
			f.log.Warn().Err(err).Msg("forwarder metrics not registered")
		} else {
			defer r.Unregister(f.metrics)
		}
	}

	e := newEngine(f)
	err := e.run(ctx)
	f.sink.close()
	f.mu.Lock()
	f.finalErr = e.finalErr
	f.mu.Unlock()
	select {
	case <-f.closing:
		if errors.Is(err, context.Canceled) && ctx.Err() == nil {
			return nil
		}
	default:
	}
	return err
}

// Close stops Run (if it runs) and waits for it to commit its final
// watermarks. It returns the final commit's error. Safe to call twice.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() { close(f.closing) })
	f.mu.Lock()
	started := f.started
	f.mu.Unlock()
	if !started {
		return nil
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finalErr
}
