package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/weir-gateway/weir/configs"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/shards"
)

const checkConfigSynopsis = `weir check-config [--reload-from RUNNING.yaml] FILE [--route TOPIC [--payload DATA] [--client-id ID] [--username USER]]

Validates a configuration file and the files it names (password file, ACL,
certificates, API credentials) as the gateway would at start, printing every
problem with FILE:LINE, and warns about routes that can never match because
an earlier route's filter covers theirs. Exit status 0 means the gateway
would start with it.

With --route TOPIC it also shows where a publish to TOPIC would go: the
route, stream, partition key and shard (of the stream's configured shard
count: a stream resharded since may place it elsewhere). Exit status 1 when
no route takes it or its key cannot be made (such a publish is refused).

Every configuration key: 'weir config example'.`

// dryRunFlags are check-config's flags that describe a publish to route.
type dryRunFlags struct {
	topic, payload, clientID, username string
}

func (d *dryRunFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.topic, "route", "", "dry-run a publish to this topic: print its route, stream, partition key and shard")
	fs.StringVar(&d.payload, "payload", "", "with --route: the publish's payload (for {payload.PATH} keys)")
	fs.StringVar(&d.clientID, "client-id", "dry-run", "with --route: the publishing client's id (for {client_id} keys)")
	fs.StringVar(&d.username, "username", "", "with --route: the client's user name or certificate identity (for {username} and {identity} keys)")
}

// run prints where the publish goes, if one was asked for, and returns the
// exit status.
func (d *dryRunFlags) run(cfg *config.File, stdout, stderr io.Writer) int {
	if d.topic == "" {
		if d.payload != "" {
			fmt.Fprintln(stderr, "weir check-config: --payload needs --route TOPIC")
			return 2
		}
		return 0
	}
	if strings.ContainsAny(d.topic, "+#") {
		fmt.Fprintf(stderr, "weir check-config: --route %q must be a topic name, without wildcards\n", d.topic)
		return 2
	}
	i := ingest.MatchRoute(cfg.Routes, d.topic)
	if i < 0 {
		fmt.Fprintf(stdout, "topic:  %s\nroute:  none: the publish is acknowledged and delivered to subscribers, not stored\n", d.topic)
		return 1
	}
	rt := cfg.Routes[i]
	fmt.Fprintf(stdout, "topic:  %s\nroute:  routes[%d] %q (%s)\nstream: %s\n", d.topic, i, rt.Filter, cfg.Where(fmt.Sprintf("routes[%d].filter", i)), rt.Stream)
	tmpl, err := ingest.ParseKeyTemplate(rt.PartitionKey)
	if err != nil {
		fmt.Fprintln(stderr, "weir check-config:", err) // Validate refuses these: not reached
		return 1
	}
	key, err := tmpl.Execute(d.topic, d.clientID, d.username, d.username, []byte(d.payload))
	if err != nil {
		fmt.Fprintf(stdout, "key:    none: the publish is refused (%v)\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "key:    %s (partition_key %q)\n", key, rt.PartitionKey)
	for _, s := range cfg.Streams {
		if s.Name == rt.Stream {
			fmt.Fprintf(stdout, "shard:  %s (of %d)\n", shardOf(key, s.Shards), s.Shards)
			return 0
		}
	}
	fmt.Fprintln(stdout, "shard:  unknown (the stream is not declared in this file)")
	return 0
}

// shardOf is the shard a fresh stream of n shards stores key in: the one
// whose even hash-key range holds the key's MD5, as shards numbers them.
func shardOf(key string, n int) string {
	h := shards.HashOf(key)
	for i, r := range shards.EvenRanges(n) {
		if h.Cmp(r[0]) >= 0 && h.Cmp(r[1]) <= 0 {
			return fmt.Sprintf("shardId-%012d", i)
		}
	}
	return "?" // the ranges cover the whole hash space
}

// printRouteWarnings warns, with both routes' FILE:LINE, about every route
// an earlier one shadows: routes are tried in order, so it never matches.
func printRouteWarnings(w io.Writer, cfg *config.File) {
	for _, s := range ingest.ShadowedRoutes(cfg.Routes) {
		later, earlier := cfg.Routes[s.Route], cfg.Routes[s.By]
		fmt.Fprintf(w, "%s: warning: routes[%d] (filter %q) never matches: routes[%d] (filter %q, %s) comes first and takes every topic it would; put the narrower route first\n",
			cfg.Where(fmt.Sprintf("routes[%d].filter", s.Route)), s.Route, later.Filter, s.By, earlier.Filter, cfg.Where(fmt.Sprintf("routes[%d].filter", s.By)))
	}
}

const configSynopsis = `weir config example

Prints the commented example configuration: every key with its default and
what it does. Start a configuration with
  weir config example > /etc/weir/weir.yaml`

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config", configSynopsis, stderr)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 || fs.Arg(0) != "example" {
		fs.Usage()
		return 2
	}
	_, _ = stdout.Write(configs.Example)
	return 0
}
