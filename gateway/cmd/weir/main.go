// Command weir is the edge telemetry gateway: an embedded MQTT broker whose
// publishes become records in Kinesis-style sharded logs on disk, readable
// locally through a Kinesis-compatible API and forwarded upstream in order.
//
// Run `weir help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/weir-gateway/weir/gateway"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/internal/sdnotify"
	"github.com/weir-gateway/weir/shards"
	"github.com/weir-gateway/weir/wal"
)

// version and revision are stamped by scripts/release.sh with
// -ldflags "-X main.version=... -X main.revision=..."; a plain `go build`
// leaves version "dev" and takes the revision from the Go build info.
var (
	version  = "dev"
	revision = ""
)

const usage = `weir — edge telemetry gateway (MQTT in, Kinesis-style shards on disk, Kinesis out)

Usage:
  weir                          run on embedded defaults (MQTT 127.0.0.1:1883, data in ./weir-data)
  weir serve --config FILE      run with a configuration file
  weir check-config FILE [--route TOPIC [--payload DATA]]
                                validate a configuration file, print every problem
                                and warning; dry-run where a publish would go
  weir check-config --reload-from RUNNING.yaml FILE
                                also print what a reload (SIGHUP) from RUNNING.yaml to FILE
                                would apply live and what needs a restart
  weir config example           print the commented example configuration (every key)
  weir dump --data-dir DIR --stream NAME [--shard ID]
                                print a stopped gateway's records as JSON lines
  weir read STREAM [flags]      read a stream through a running gateway's API
  weir streams [--api URL] [--verbose]
                                list streams, shards, retention and consumer lag
  weir passwd [-c] FILE USER    set a password in a password file (Mosquitto's format)
  weir backup --data-dir DIR --to FILE.tar [--api URL]
                                copy a data directory into a tar file, offline or
                                from a running gateway
  weir verify --data-dir DIR    check every record, segment footer and checksum of a
                                stopped gateway's data; FILE:OFFSET of any damage
  weir version                  print version, revision, Go version and platform

Run 'weir COMMAND --help' for a command's flags.
Run 'weir config example' for every configuration key.
`

func main() {
	raiseGOMAXPROCS()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// minProcs is the least GOMAXPROCS weir runs with. Every acknowledged
// publish waits on a committer that blocks in fdatasync; on a 2-core board
// with GOMAXPROCS=2 a committer returning from that syscall often finds no
// free P and queues behind hundreds of broker goroutines, which stretched
// each group commit and cut acked msgs/s by a third to a half in the
// ingest benchmark (BENCHMARKS.md). Spare Ps let it resume at once; the
// OS still shares the same cores fairly.
const minProcs = 4

func raiseGOMAXPROCS() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return serve(config.Default(), "embedded defaults", stderr)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(rest, stderr)
	case "check-config":
		return cmdCheckConfig(rest, stdout, stderr)
	case "dump":
		return cmdDump(rest, stdout, stderr)
	case "read":
		return cmdRead(rest, stdout, stderr)
	case "streams":
		return cmdStreams(rest, stdout, stderr)
	case "passwd":
		return cmdPasswd(rest, os.Stdin, stdout, stderr)
	case "config":
		return cmdConfig(rest, stdout, stderr)
	case "backup":
		return cmdBackup(rest, stdout, stderr)
	case "verify":
		return cmdVerify(rest, stdout, stderr)
	case "version", "--version", "-version":
		printVersion(stdout)
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "weir: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// versionString is the one-line version the start log carries.
func versionString() string {
	return fmt.Sprintf("weir %s (%s, %s, %s/%s)", version, buildRevision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "weir %s\nrevision: %s\ngo: %s\nplatform: %s/%s\n", version, buildRevision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildRevision is the stamped git revision, else the one the Go toolchain
// recorded (with "-dirty" for uncommitted changes), else "unknown".
func buildRevision() string {
	if revision != "" {
		return revision
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// newFlags makes a flag set whose --help prints the command's usage.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(stderr, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

func cmdServe(args []string, stderr io.Writer) int {
	fs := newFlags("serve", "weir serve --config FILE", stderr)
	path := fs.String("config", "", "configuration file (YAML); see configs/weir.example.yaml")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "weir serve: --config FILE is required (run plain `weir` for embedded defaults)")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	return serve(cfg, *path, stderr)
}

func serve(cfg *config.File, source string, stderr io.Writer) int {
	log := newLogger(cfg, stderr)
	log.Info().Str("version", versionString()).Str("config", source).Msg("starting")
	d, err := gateway.StartWith(cfg, log, gateway.Options{Version: version, Systemd: sdnotify.FromEnv()})
	if err != nil {
		log.Error().Err(err).Msg("start failed")
		if hint := recoveryHint(err); hint != "" {
			fmt.Fprintln(stderr, hint)
		}
		return 1
	}
	// SIGHUP is what logrotate, Mosquitto operators and `systemctl
	// reload` send: re-read the configuration file and apply what can
	// change live, re-read the credential, ACL and certificate files, and
	// never stop.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info().Str("config", source).Msg("SIGHUP: reloading the configuration, credentials, ACL and certificates")
			_ = d.Reload() // every change and every failure is logged with its file:line
		}
	}()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	signal.Stop(hup)
	log.Info().Str("signal", s.String()).Msg("stopping")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	go func() {
		// A second signal means stop now.
		<-sig
		os.Exit(1)
	}()
	if err := d.Close(ctx); err != nil {
		log.Error().Err(err).Msg("stopped with errors")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

// recoveryHint tells the operator what to do about damage that stops the
// gateway from opening its data.
func recoveryHint(err error) string {
	var ce *wal.CorruptionError
	if !errors.As(err, &ce) {
		return ""
	}
	return fmt.Sprintf(`
weir found a damaged record inside a sealed segment, which normal recovery
never truncates because it would drop acknowledged data silently:
  shard:   %s
  segment: %s
  offset:  %d
To proceed, stop here and keep a copy of the data directory, then either
restore that segment from a backup, or move it (and every later segment of
that shard) out of the shard directory to accept losing the records from
that offset on; 'weir verify --data-dir DIR' lists every damaged place and
'weir dump' shows what remains.`, ce.Shard, ce.Segment, ce.Offset)
}

func newLogger(cfg *config.File, stderr io.Writer) zerolog.Logger {
	var w io.Writer = stderr
	if cfg.Log.Format != "json" {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339, NoColor: !isTerminal(stderr)}
	}
	// The level is the process's (zerolog's global level), so that a
	// reload can change it for every logger made from this one.
	gateway.SetLogLevel(cfg.Log.Level)
	return zerolog.New(w).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check-config", checkConfigSynopsis, stderr)
	from := fs.String("reload-from", "", "the configuration file the gateway runs with (`RUNNING.yaml`): also print what a reload\n"+
		"(kill -HUP, systemctl reload weir) would do on changing it to FILE, key by key:\n"+
		"applied live, restart needed, or not applied")
	var dry dryRunFlags
	dry.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "weir check-config: exactly one configuration FILE is required")
		fs.Usage()
		return 2
	}
	path := pos[0]
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The files the config names are read as the gateway would read them,
	// so a plain-text password or a bad ACL line shows up here with its
	// own FILE:LINE, not at the next restart.
	if err := gateway.CheckFiles(cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	printRouteWarnings(stderr, cfg)
	fmt.Fprintf(stdout, "%s: ok\n", path)
	if *from != "" {
		running, err := config.Load(*from)
		if err != nil {
			fmt.Fprintf(stderr, "--reload-from: %v\n", err)
			return 1
		}
		printPlan(stdout, gateway.Plan(running, cfg), cfg)
	}
	return dry.run(cfg, stdout, stderr)
}

// printPlan writes a reload's changes grouped by effect, one per line
// with the new value's file:line.
func printPlan(w io.Writer, cs conf.Changes, next *config.File) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "reload: no changes")
		return
	}
	for _, e := range []conf.Effect{conf.Live, conf.Restart, conf.Kept} {
		group := cs.Only(e)
		if len(group) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s:\n", e)
		for _, c := range group {
			fmt.Fprintf(w, "  %s: %s\n", next.Where(c.Path), c)
		}
	}
}

func cmdDump(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dump", "weir dump --data-dir DIR --stream NAME [--shard ID] [--keys-dir DIR]", stderr)
	dir := fs.String("data-dir", "", "data directory of a stopped gateway")
	keys := fs.String("keys-dir", "", "the gateway's encryption.keys_dir, to read encrypted streams")
	stream := fs.String("stream", "", "stream to print")
	shard := fs.String("shard", "", "only this shard (e.g. shardId-000000000001)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *dir == "" || *stream == "" {
		fs.Usage()
		return 2
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr}).Level(zerolog.WarnLevel)
	if err := gateway.Dump(stdout, log, *dir, *keys, *stream, *shard); err != nil {
		fmt.Fprintln(stderr, "weir dump:", err)
		if errors.Is(err, shards.ErrDataDirLocked) {
			fmt.Fprintf(stderr, "A gateway is running on %s; read through its API instead:\n  weir read %s [--api URL]\n", *dir, *stream)
			return 1
		}
		if hint := recoveryHint(err); hint != "" {
			fmt.Fprintln(stderr, hint)
		}
		if errors.Is(err, shards.ErrEncryptionOff) {
			fmt.Fprintln(stderr, "The stream holds encrypted records: pass --keys-dir with the gateway's encryption.keys_dir.")
		}
		return 1
	}
	return 0
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
