package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
)

const runUsage = `Usage: firmware-sim [run] [flags]

Connects a fleet of simulated devices (one paho MQTT client each) to a
broker and publishes telemetry until --messages are sent, --duration ends
or you press Ctrl-C. Progress goes to stderr, the summary to stdout.

Other commands: 'firmware-sim verify' checks that every acknowledged message
of a --ledger reached the stream, in order (firmware-sim verify -h);
'firmware-sim check-scenario FILE' validates a scenario; 'firmware-sim help'.

Examples:
  # 100 devices, 5 msg/s each for 30 s, QoS 1 (default)
  firmware-sim --broker tcp://127.0.0.1:1883 --devices 100 --rate 5 --duration 30s

  # 1,000 devices × 100 messages as fast as acks allow, with a ledger to verify later
  firmware-sim --devices 1000 --messages 100 --rate 0 --ledger run.ledger

  # camera uploads of 64-256 KiB, CBOR trackers, a reconnect storm at 20s
  firmware-sim --devices 20 --payload binary --size 64KiB-256KiB --rate 0.2 --duration 1m --storm 20s --storm-jitter 5s
  firmware-sim --devices 50 --payload cbor --mobile --rate 1 --duration 1m --id tracker-{n:04}

  # a scenario file (fleet mix + timed events), machine-readable summary
  firmware-sim --scenario firmware-sim/scenarios/sensors-and-cameras.yaml --summary json

Templates (--id, --client-id, --topic, --ledger-key): {n} device number in
its group from 1, {n:05} zero-padded, {i} number across the fleet, {group}
group name ("dev" without a scenario), {id} device name, {client_id}.

Flags:
`

const summaryDoc = `
Summary (--summary json), stable field names:
  devices, never_connected      fleet size; devices that never got a CONNACK
  elapsed_s                     wall time of the whole run
  generated                     messages the devices produced (the offered load)
  sent                          first publish attempts handed to paho
  acked                         PUBACK (QoS 1) / PUBCOMP (QoS 2) / written (QoS 0); == ledger lines
  failed, failed_by_reason      buffer_full, ack_timeout, publish_error, unacked_at_exit
  unsent                        still buffered in devices when the run ended
  probes_acked                  acked oversize/unrouted probes (included in acked)
  late_acks                     acks that arrived after the device gave up
  msgs_per_sec                  acked / time until generation stopped or the last ack
  connects, connections_lost, connect_failures
  ledger_lines
  latency_ms {count, mean, p50, p90, p99, p999, max}   publish→ack, HDR histogram (<1% error)

Exit status: 0 done, 1 failed messages with --fail-on-loss, 2 bad flags or
scenario, 3 I/O error (ledger).
`

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("firmware-sim run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), summaryDoc)
	}
	if stop, code := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "firmware-sim: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	cfg, err := f.config(set)
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim: %v\n", err)
		return exitUsage
	}
	if f.summary != "text" && f.summary != "json" {
		fmt.Fprintf(stderr, "firmware-sim: --summary must be text or json\n")
		return exitUsage
	}
	if errs := cfg.Defaults().Validate(); len(errs) > 0 {
		fmt.Fprintf(stderr, "firmware-sim: invalid settings:\n")
		for _, e := range errs {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		return exitUsage
	}
	var ledgerFile *os.File
	if f.ledger != "" {
		ledgerFile, err = os.Create(f.ledger)
		if err != nil {
			fmt.Fprintf(stderr, "firmware-sim: %v\n", err)
			return exitRuntime
		}
		defer ledgerFile.Close()
		cfg.Ledger = ledgerFile
	}
	var prog *progress
	if f.progress > 0 {
		prog = newProgress(stderr, isTerminal(stderr))
		cfg.ProgressInterval = f.progress
		if !prog.tty && !set["progress"] {
			cfg.ProgressInterval = 5 * time.Second
		}
		cfg.Progress = prog.update
	}
	cfg.Logf = func(format string, a ...any) {
		if prog != nil {
			prog.log(format, a...)
		} else {
			fmt.Fprintf(stderr, format+"\n", a...)
		}
	}
	if cfg.Duration == 0 && !bounded(cfg) {
		fmt.Fprintln(stderr, "firmware-sim: running until interrupted (set --messages or --duration to stop on its own)")
	}
	sum, err := fleet.Run(ctx, cfg)
	if prog != nil {
		prog.finish()
	}
	code := exitOK
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim: %v\n", err)
		if errors.Is(err, fleet.ErrInvalidConfig) {
			return exitUsage
		}
		code = exitRuntime
	}
	if ledgerFile != nil {
		if err := ledgerFile.Sync(); err != nil && code == exitOK {
			fmt.Fprintf(stderr, "firmware-sim: ledger: %v\n", err)
			code = exitRuntime
		}
	}
	if f.summary == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
	} else {
		_ = sum.WriteText(stdout)
	}
	if code == exitOK && f.failOnLoss && sum.Failed > 0 {
		code = exitFailed
	}
	return code
}

func bounded(cfg fleet.Config) bool {
	for _, g := range cfg.Groups {
		if g.Messages == 0 {
			return false
		}
	}
	return true
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
