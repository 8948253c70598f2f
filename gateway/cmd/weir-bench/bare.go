package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// bareBrokerCmd is the baseline: mochi with its defaults and no hooks but
// the allow-all auth hook (without it mochi refuses every client). It runs
// as a separate process, like weir, so both are measured the same way:
// same load generator, same process boundary, RSS of the broker alone.
const bareBrokerCmd = "bare-broker"

func runBareBroker(args []string) int {
	fs := flag.NewFlagSet(bareBrokerCmd, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:1883", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	srv := mqtt.New(&mqtt.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		fmt.Fprintln(os.Stderr, "bare broker:", err)
		return 1
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: *listen})); err != nil {
		fmt.Fprintln(os.Stderr, "bare broker:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if err := srv.Serve(); err != nil {
		fmt.Fprintln(os.Stderr, "bare broker:", err)
		return 1
	}
	<-sig
	srv.Close()
	return 0
}
