package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // verification failed / failed messages with --fail-on-loss
	exitUsage   = 2 // bad flags, config or scenario
	exitRuntime = 3 // I/O or API errors
)

const topUsage = `firmware-sim: simulate a fleet of MQTT devices and verify what reached the stream.

Usage:
  firmware-sim [run] [flags]          simulate a fleet (firmware-sim run -h)
  firmware-sim verify [flags]         check that every acknowledged message of a ledger reached
                                      the stream, in order (firmware-sim verify -h)
  firmware-sim check-scenario FILE    validate a scenario file
  firmware-sim help [command]

Examples:
  firmware-sim --broker tcp://127.0.0.1:1883 --devices 100 --rate 5 --duration 30s
  firmware-sim --scenario firmware-sim/scenarios/sensors-and-cameras.yaml --ledger run.ledger
  firmware-sim --broker tls://gateway.local:8883 --cafile ca.crt --cert certs/ --username {id}
  firmware-sim verify --ledger run.ledger --api http://127.0.0.1:4588 --stream telemetry
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	switch cmd {
	case "run":
		return runCmd(ctx, args, stdout, stderr)
	case "verify":
		return verifyCmd(ctx, args, stdout, stderr)
	case "check-scenario":
		return checkScenarioCmd(args, stdout, stderr)
	case "help":
		if len(args) > 0 && args[0] != "help" {
			return realMain([]string{args[0], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, topUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "firmware-sim: unknown command %q\n\n%s", cmd, topUsage)
	return exitUsage
}

// signalContext is cancelled by the first SIGINT/SIGTERM (the run drains,
// flushes its ledger and prints its summary); a second one exits at once.
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			fmt.Fprintln(stderr, "\nfirmware-sim: stopping (draining acks, flushing the ledger); interrupt again to quit now")
			cancel()
		case <-done:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(stderr, "firmware-sim: quitting")
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

// parseFlags parses and reports whether to stop (help or error) with code.
func parseFlags(fs *flag.FlagSet, args []string) (stop bool, code int) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return true, exitOK
	case err != nil:
		return true, exitUsage
	}
	return false, 0
}
