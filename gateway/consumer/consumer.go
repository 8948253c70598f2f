package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway/apiclient"
	"github.com/weir-gateway/weir/internal/backoff"
)

// Start positions for shards without a checkpoint.
const (
	FromTrimHorizon = "trim_horizon"
	FromLatest      = "latest"
)

// Defaults.
const (
	DefaultWaitMillis         = 5000
	DefaultCheckpointInterval = 5 * time.Second
	maxWaitMillis             = 20000
)

// ErrStop, returned by a handler, stops Run cleanly: the record it was
// given is not counted as delivered (so it is not checkpointed), records
// delivered before are committed, and Run returns nil.
var ErrStop = errors.New("consumer: stop")

// Errors of New and Run.
var (
	ErrConfig         = errors.New("consumer: invalid config")
	ErrAlreadyRunning = errors.New("consumer: Run is already running")
)

// Config configures a Consumer.
type Config struct {
	// Endpoint is the gateway's API, e.g. http://127.0.0.1:4588.
	Endpoint string
	// Stream to read.
	Stream string
	// Name is the consumer's registered name ([a-zA-Z0-9_.-]{1,128}); Run
	// registers it if missing. Checkpoints belong to the name and are kept
	// by the gateway, so they survive restarts of both sides. Empty with
	// Ephemeral.
	Name string
	// From says where to start in shards the consumer has never
	// checkpointed: "trim_horizon" (default, everything kept), "latest"
	// (only new records) or a decimal sequence number N (in every shard,
	// the first record numbered N or more; clamped to what the shard
	// holds when Run starts: below its trim horizon means the trim
	// horizon, beyond its last record means its end, so that records it
	// gets later are read even if their numbers are below N).
	//
	// For a registered consumer From applies to the first run only
	// (unless IgnoreCheckpoints): "latest" and N are pinned at once by
	// committing the positions they imply. Shards created after Run
	// started, by a reshard, are always read from their start.
	From string
	// IgnoreCheckpoints starts every shard at From even where the
	// consumer has a checkpoint, to rewind or skip ahead. The new start
	// positions are committed before reading, so a later run continues
	// from them even in shards this run never reached.
	IgnoreCheckpoints bool
	// Ephemeral reads without a registered consumer: nothing is
	// registered or committed on the gateway, Checkpoint does nothing,
	// and every Run starts at From. Name must be empty.
	Ephemeral bool
	// StopAtEnd makes Run return nil once it has delivered every record
	// that was stored when it started (each shard read up to its last
	// record at that moment, or to its end). Shards created after the
	// start are not read; records appended after it are not delivered,
	// except that a shard whose start records retention deleted meanwhile
	// counts as caught up once its reader reaches the tip.
	StopAtEnd bool
	// Sequential reads one shard at a time, in shard-id order (which puts
	// parents before children), so records come shard by shard. It
	// requires StopAtEnd: an open shard has no end to move on from.
	Sequential bool
	// CheckpointEvery commits a shard's position after this many records
	// delivered from it (0 = not by count).
	CheckpointEvery int
	// CheckpointInterval commits every interval. Zero means 5 s; a
	// negative value turns the timer off. Positions are also committed at
	// the end of each shard, when Run returns, and on Checkpoint.
	CheckpointInterval time.Duration
	// WaitMillis is how long one long-poll waits for new records (default
	// 5000, at most 20000). It bounds nothing a caller sees: a record
	// arriving during the wait is delivered within milliseconds.
	WaitMillis int
	// Limit caps the records one call returns (0 = the gateway's 10,000).
	Limit int
	// HTTPClient defaults to a client with enough idle connections for
	// one long-poll per shard.
	HTTPClient *http.Client
	// Profile and CAFile go to apiclient.Options: requests are signed
	// with the standard AWS credential chain (this profile, else
	// AWS_PROFILE or the environment's keys), unsigned when it has none;
	// CAFile (else AWS_CA_BUNDLE) verifies an https gateway's certificate.
	Profile, CAFile string
	Logger          zerolog.Logger
}

// Record is one delivered record.
type Record struct {
	Stream  string
	ShardID string
	Seq     string // Kinesis sequence number (decimal)
	SeqNum  uint64
	Key     string // partition key
	Data    []byte
	Arrival time.Time
	// MQTT metadata ("" and 0 for records written through PutRecord).
	Topic    string
	ClientID string
	QoS      byte
	Props    []UserProperty
}

// Handler processes one record. Records of one shard are delivered one at
// a time, in order; records of different shards concurrently, so a handler
// must be safe for concurrent use. Returning an error stops Run (see
// ErrStop).
type Handler func(ctx context.Context, r Record) error

// Consumer reads one stream as one registered consumer (or, Ephemeral, as
// an anonymous reader).
type Consumer struct {
	cfg       Config
	fromSeq   uint64 // From as a sequence number (fromIsSeq)
	fromIsSeq bool
	cl        *apiclient.Client
	log       zerolog.Logger
	running   atomic.Bool

	mu     sync.Mutex
	shards map[string]*shardState
}

// New checks cfg and returns a Consumer. It does not contact the gateway;
// Run does, and keeps retrying while the gateway is unreachable.
func New(cfg Config) (*Consumer, error) {
	var problems []string
	if !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
		problems = append(problems, fmt.Sprintf("Endpoint %q must be an http:// or https:// URL", cfg.Endpoint))
	}
	if cfg.Stream == "" {
		problems = append(problems, "Stream is required")
	}
	switch {
	case cfg.Ephemeral && cfg.Name != "":
		problems = append(problems, "Name must be empty with Ephemeral (nothing is registered)")
	case !cfg.Ephemeral && cfg.Name == "":
		problems = append(problems, "Name is required (or Ephemeral)")
	}
	var fromSeq uint64
	fromIsSeq := false
	switch cfg.From {
	case "":
		cfg.From = FromTrimHorizon
	case FromTrimHorizon, FromLatest:
	default:
		v, ok := parseSeq(cfg.From)
		if !ok {
			problems = append(problems, fmt.Sprintf("From %q must be %q, %q or a sequence number", cfg.From, FromTrimHorizon, FromLatest))
		}
		fromSeq, fromIsSeq = v, ok
	}
	if cfg.Sequential && !cfg.StopAtEnd {
		problems = append(problems, "Sequential requires StopAtEnd")
	}
	if cfg.WaitMillis == 0 {
		cfg.WaitMillis = DefaultWaitMillis
	}
	if cfg.WaitMillis < 0 || cfg.WaitMillis > maxWaitMillis {
		problems = append(problems, fmt.Sprintf("WaitMillis %d must be in [0, %d]", cfg.WaitMillis, maxWaitMillis))
	}
	if cfg.CheckpointEvery < 0 {
		problems = append(problems, "CheckpointEvery must be >= 0")
	}
	if cfg.Limit < 0 || cfg.Limit > 10000 {
		problems = append(problems, "Limit must be in [0, 10000]")
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	c := &Consumer{cfg: cfg, fromSeq: fromSeq, fromIsSeq: fromIsSeq, log: cfg.Logger, shards: map[string]*shardState{}}
	cl, err := apiclient.New(apiclient.Options{Endpoint: cfg.Endpoint, Profile: cfg.Profile, CAFile: cfg.CAFile,
		HTTPClient: cfg.HTTPClient, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.cl = cl
	return c, nil
}

// Run reads until ctx is done, the handler fails or returns ErrStop, or the
// stream is deleted. It returns nil when stopped by ctx or ErrStop, after
// committing what was delivered. Gateway outages are waited out.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer c.running.Store(false)
	defer c.cl.CloseIdleConnections()
	r := &run{c: c, h: h, events: make(chan event, 16)}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	defer r.cancel(nil)
	err := r.loop()
	r.cancel(nil)
	r.wg.Wait()
	// Commit what was delivered, even though ctx is done.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cerr := c.Checkpoint(cctx); cerr != nil {
		c.log.Warn().Err(cerr).Msg("final checkpoint failed")
		if err == nil && ctx.Err() == nil {
			err = cerr
		}
	}
	return err
}

// Checkpoint commits, for every shard, the last record delivered to the
// handler (and returned from it). It may be called from a handler or from
// any goroutine. With Ephemeral it does nothing.
func (c *Consumer) Checkpoint(ctx context.Context) error {
	c.mu.Lock()
	states := make([]*shardState, 0, len(c.shards))
	for _, s := range c.shards {
		states = append(states, s)
	}
	c.mu.Unlock()
	var errs []error
	for _, s := range states {
		errs = append(errs, c.commit(ctx, s))
	}
	return errors.Join(errs...)
}

// commit makes s's delivered position durable on the gateway. Commits of
// one shard are serialised so a slow older commit cannot land after a newer
// one.
func (c *Consumer) commit(ctx context.Context, s *shardState) error {
	if c.cfg.Ephemeral {
		return nil
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	seq, n, ok := s.pending()
	if !ok {
		return nil
	}
	if err := c.cl.CommitCheckpoint(ctx, c.cfg.Stream, c.cfg.Name, s.id, formatSeq(s.id, seq)); err != nil {
		return fmt.Errorf("consumer: commit %s at %d: %w", s.id, seq, err)
	}
	s.committed(seq, n)
	return nil
}

// retryDelays are the consumer's waits between tries of an unavailable
// gateway: 50ms doubling to 2s, jittered.
var retryDelays = backoff.Exp{Base: 50 * time.Millisecond, Cap: 2 * time.Second}

// transient reports whether an error is worth retrying forever: the gateway
// is down, restarting, overloaded or throttling. Nothing is transient once
// ctx is done.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	return true // transport errors: refused, reset, timed out
}
