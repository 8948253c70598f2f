package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/gateway"
	"github.com/weir-gateway/weir/gateway/apiclient"
	"github.com/weir-gateway/weir/gateway/consumer"
	"github.com/weir-gateway/weir/shards"
)

const readSynopsis = `weir read STREAM [--api URL] [--from trim_horizon|latest|SEQ|checkpoint] [--consumer NAME]
                 [--limit N] [--follow [--wait D]] [--format json|raw] [--profile NAME] [--ca-file FILE]

Prints a stream's records through a running gateway's API, one JSON line each
(the fields of 'weir dump'), or with --format raw each record's data followed
by a newline.

Without --follow it stops once it has printed every record stored when it
started, shard by shard in shard-id order (parents before children). With
--follow it keeps waiting for new records; records of different shards may
then interleave, each shard's stay in order, and a key's records stay in
order across splits and merges.

--from SEQ starts every shard at its first record numbered SEQ or more,
clamped to what the shard holds now: below its oldest stored record means
that record, beyond its last record means its end (with --follow, records it
gets later are printed even if their numbers are below SEQ).

With --consumer NAME the consumer is registered if needed, reading starts at
its checkpoint (the default --from checkpoint; a new consumer starts at the
trim horizon) and a checkpoint is committed for exactly the records printed,
also when stopped by --limit or Ctrl-C, so the next run continues right
after them. Another --from moves the consumer there before reading.
"Printed" means written to standard output: use --limit rather than
'| head', as a pipe takes up to 64 KiB its reader may never read.
Without --consumer nothing is registered or committed.` + credentialsHelp

// readOptions are weir read's parsed flags.
type readOptions struct {
	stream, from, consumer, format string
	api                            apiFlags
	limit                          int
	follow                         bool
	wait                           time.Duration
}

func cmdRead(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A closed pipe (`weir read ... | head`) must end the run with a
	// commit of what was written, not kill the process before it commits.
	signal.Ignore(syscall.SIGPIPE)
	return readStream(ctx, args, stdout, stderr)
}

// readStream is weir read with the interrupt as ctx, so tests can stop a
// --follow.
func readStream(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parseRead(args, stderr)
	if code >= 0 {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "weir read:", err)
		return 1
	}
	gw, err := o.api.client()
	if err != nil {
		fmt.Fprintln(stderr, "weir read:", err)
		return 2
	}
	if err := checkStream(ctx, gw, o.stream); err != nil {
		return fail(err)
	}
	cfg := consumer.Config{
		Endpoint: o.api.endpoint, Profile: o.api.profile, CAFile: o.api.caFile, Stream: o.stream, Name: o.consumer, Ephemeral: o.consumer == "",
		From: o.from, StopAtEnd: !o.follow, Sequential: !o.follow,
		// Only the final commit without --follow; with it, every second
		// too. Both cover exactly what was printed: a record counts as
		// delivered once its line was written.
		CheckpointInterval: -1,
		Logger:             zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: !isTerminal(stderr)}).Level(zerolog.WarnLevel).With().Timestamp().Logger(),
	}
	if o.follow {
		cfg.CheckpointInterval = time.Second
	}
	if o.from == "checkpoint" {
		cfg.From = consumer.FromTrimHorizon // for shards never checkpointed
	} else if o.consumer != "" {
		cfg.IgnoreCheckpoints = true
	}
	if o.limit > 0 {
		cfg.Limit = min(o.limit, 10000) // fetch no more than will be printed
	}
	c, err := consumer.New(cfg)
	if err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &printer{out: stdout, raw: o.format == "raw", limit: o.limit, stop: cancel}
	if !p.raw && isTerminal(stdout) {
		p.hint = stderr // a person is reading: say how to see the data itself
	}
	if o.follow && o.wait > 0 {
		p.idle, p.wait = time.AfterFunc(o.wait, cancel), o.wait
		defer p.idle.Stop()
	}
	if err := c.Run(runCtx, p.handle); err != nil {
		if apiclient.TypeOf(err) == "ResourceNotFoundException" {
			return fail(fmt.Errorf("stream %q not found at %s", o.stream, o.api.endpoint))
		}
		return fail(explain(err))
	}
	if o.consumer != "" {
		// Run commits what was printed but, stopped by an interrupt, only
		// logs a failed commit; the operator must know the next run will
		// print those records again. Committed positions are not resent.
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := c.Checkpoint(cctx); err != nil {
			return fail(fmt.Errorf("the checkpoint of what was printed could not be committed, so the next run prints those records again: %w", err))
		}
	}
	return 0
}

func parseRead(args []string, stderr io.Writer) (readOptions, int) {
	var o readOptions
	fs := newFlags("read", readSynopsis, stderr)
	o.api.register(fs)
	fs.StringVar(&o.from, "from", "", "where to start: trim_horizon, latest, a sequence number, or checkpoint (default checkpoint with --consumer, else trim_horizon)")
	fs.StringVar(&o.consumer, "consumer", "", "read as this registered consumer and commit what is printed")
	fs.IntVar(&o.limit, "limit", 0, "print at most N records in total (0 = no limit)")
	fs.BoolVar(&o.follow, "follow", false, "keep printing new records until interrupted")
	fs.DurationVar(&o.wait, "wait", 0, "with --follow: stop once no record has arrived for this long (0 = never)")
	fs.StringVar(&o.format, "format", "json", "json (one object per line) or raw (the data, then a newline)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return o, flagExit(err)
	}
	usage := func(msg string) (readOptions, int) {
		fmt.Fprintf(stderr, "weir read: %s (see 'weir read --help')\n", msg)
		return o, 2
	}
	switch {
	case len(pos) != 1:
		return usage("exactly one STREAM is required")
	case o.format != "json" && o.format != "raw":
		return usage(fmt.Sprintf("--format %q must be json or raw", o.format))
	case o.limit < 0:
		return usage("--limit must be >= 0")
	case o.wait < 0:
		return usage("--wait must be >= 0")
	case o.wait > 0 && !o.follow:
		return usage("--wait needs --follow (without it, read stops at the end by itself)")
	}
	o.stream = pos[0]
	switch o.from {
	case "":
		o.from = consumer.FromTrimHorizon
		if o.consumer != "" {
			o.from = "checkpoint"
		}
	case "checkpoint":
		if o.consumer == "" {
			return usage("--from checkpoint needs --consumer NAME")
		}
	case consumer.FromTrimHorizon, consumer.FromLatest:
	default:
		if _, _, err := shards.DecodeSeq(o.from); err != nil {
			return usage(fmt.Sprintf("--from %q must be trim_horizon, latest, checkpoint or a sequence number", o.from))
		}
	}
	return o, -1
}

// parseInterspersed parses flags before and after positional arguments
// (`weir read telemetry --follow` as well as `weir read --follow telemetry`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// printer is the consumer's handler: it prints one record per call, one
// at a time (shards are read in parallel with --follow), and a record
// counts as delivered, and so is checkpointed, only once its line is
// written.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	raw   bool
	limit int
	n     int
	buf   []byte
	stop  context.CancelFunc
	idle  *time.Timer
	wait  time.Duration
	// hint, when set, gets one line after the first record saying that
	// "data" is base64 and --format raw prints it as sent.
	hint io.Writer
}

const base64Hint = `weir read: "data" is base64 in JSON lines; --format raw prints each record's data as sent`

func (p *printer) handle(ctx context.Context, r consumer.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ctx.Err() != nil || (p.limit > 0 && p.n >= p.limit) {
		return consumer.ErrStop // not printed, so not committed
	}
	if p.raw {
		p.buf = append(append(p.buf[:0], r.Data...), '\n')
	} else {
		b, err := json.Marshal(gateway.LineOf(r.ShardID, storedRecord(r)))
		if err != nil {
			return err
		}
		p.buf = append(append(p.buf[:0], b...), '\n')
	}
	// One write per record, unbuffered: a periodic checkpoint can never
	// cover a line still sitting in a buffer.
	if _, err := p.out.Write(p.buf); err != nil {
		if errors.Is(err, syscall.EPIPE) {
			return consumer.ErrStop // the reader went away: a normal end
		}
		return fmt.Errorf("write output: %w", err)
	}
	p.n++
	if p.hint != nil {
		fmt.Fprintln(p.hint, base64Hint)
		p.hint = nil
	}
	if p.limit > 0 && p.n >= p.limit {
		p.stop()
	}
	if p.idle != nil {
		p.idle.Reset(p.wait)
	}
	return nil
}

// storedRecord turns a delivered record back into the store's shape, so
// that read prints exactly what dump prints.
func storedRecord(r consumer.Record) shards.Record {
	rec := shards.Record{Seq: r.SeqNum, Key: r.Key, Data: r.Data, Arrival: r.Arrival.UnixMilli(),
		Topic: r.Topic, ClientID: r.ClientID, QoS: r.QoS}
	for _, p := range r.Props {
		rec.Props = append(rec.Props, shards.UserProperty{Key: p.Key, Value: p.Value})
	}
	return rec
}
