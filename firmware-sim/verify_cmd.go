package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/scenario"
	"github.com/weir-gateway/weir/firmware-sim/verify"
)

const verifyUsage = `Usage: firmware-sim verify --ledger FILE --stream NAME (--api URL | --endpoint URL) [flags]

Reads the whole stream back through a Kinesis-compatible API (ListShards,
then every shard from TRIM_HORIZON, parents before children) and matches
each record to the ledger by the device name and sequence number in its
payload. Reports, per device, messages that are missing (acked but not in
the stream), duplicated, and out of order.

Exit status: 0 all acked messages present and in order; 1 any missing or
reordered (or duplicated with --strict-dups); 2 bad flags; 3 I/O or API error.

Examples:
  # against the gateway's own API
  firmware-sim verify --ledger run.ledger --api http://127.0.0.1:4588 --stream telemetry

  # against kinesalite after the forwarder's json envelope, waiting up to 60s for it to catch up
  firmware-sim verify --ledger run.ledger --endpoint http://127.0.0.1:4567 --stream telemetry-cloud --envelope json --wait 60s

Credentials: requests are signed with the standard AWS chain, as 'weir read'
signs them: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else --profile (or
AWS_PROFILE) from ~/.aws/credentials and ~/.aws/config; never the EC2
metadata service. With none, dummy static keys (accepted by a gateway without
api.credentials_file and by emulators). --ca-file (or AWS_CA_BUNDLE) trusts
the CA of an https gateway.

Flags:
`

func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("firmware-sim verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		ledgerPath = fs.String("ledger", "", "ledger `file` written by a run (required)")
		api        = fs.String("api", "", "the gateway's Kinesis-compatible API base `URL`, e.g. http://127.0.0.1:4588")
		endpoint   = fs.String("endpoint", "", "any Kinesis endpoint `URL` (kinesalite, localstack); empty with no --api = AWS")
		region     = fs.String("region", "", "AWS region (default $AWS_REGION, the profile's, or us-east-1)")
		profile    = fs.String("profile", "", "AWS profile whose credentials sign the requests (default $AWS_PROFILE)")
		caFile     = fs.String("ca-file", "", "PEM `file` of the CA of an https endpoint (default $AWS_CA_BUNDLE)")
		stream     = fs.String("stream", "", "stream `name` (required)")
		envelope   = fs.String("envelope", "auto", "record data: raw (the MQTT payload), json (forwarder envelope {\"id\",\"data\":base64,...}) or auto")
		timeout    = fs.Duration("timeout", 5*time.Minute, "give up after this long")
		wait       = fs.Duration("wait", 0, "keep polling up to this long while messages are missing (a forwarder catching up)")
		since      = fs.String("since", "", "ignore records whose payload timestamp is before this RFC 3339 `time` (earlier runs)")
		strictDups = fs.Bool("strict-dups", false, "fail on duplicates too")
		strictKeys = fs.Bool("strict-keys", false, "fail when a record's partition key differs from the ledger's key")
		format     = fs.String("format", "text", "report format: text or json")
		maxDevices = fs.Int("max-devices", 50, "list at most this many devices with problems (text)")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), verifyUsage)
		fs.PrintDefaults()
	}
	if stop, code := parseFlags(fs, args); stop {
		return code
	}
	usage := func(f string, a ...any) int {
		fmt.Fprintf(stderr, "firmware-sim verify: "+f+"\n", a...)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *ledgerPath == "":
		return usage("--ledger is required")
	case *stream == "":
		return usage("--stream is required")
	case *api != "" && *endpoint != "":
		return usage("give --api or --endpoint, not both")
	case *format != "text" && *format != "json":
		return usage("--format must be text or json")
	}
	env, err := verify.ParseEnvelope(*envelope)
	if err != nil {
		return usage("%v", err)
	}
	opts := verify.RunOptions{Envelope: env, Wait: *wait}
	if *since != "" {
		t, err := time.Parse(time.RFC3339Nano, *since)
		if err != nil {
			return usage("--since: %v", err)
		}
		opts.Since = t
	}
	lf, err := os.Open(*ledgerPath)
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim verify: %v\n", err)
		return exitRuntime
	}
	entries, err := ledger.Read(lf)
	lf.Close()
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim verify: %s: %v\n", *ledgerPath, err)
		return exitRuntime
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ep := *endpoint
	if *api != "" {
		ep = *api
	}
	client, err := verify.NewClient(ctx, verify.ClientOptions{Endpoint: ep, Region: *region, Profile: *profile, CAFile: *caFile})
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim verify: %v\n", err)
		return exitRuntime
	}
	rep, err := verify.Verify(ctx, client, *stream, entries, opts)
	if err != nil {
		fmt.Fprintf(stderr, "firmware-sim verify: %v\n", err)
		return exitRuntime
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		_ = rep.WriteText(stdout, *maxDevices)
	}
	if rep.Failed(*strictDups, *strictKeys) {
		return exitFailed
	}
	return exitOK
}

func checkScenarioCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, "Usage: firmware-sim check-scenario FILE\n\nValidates a scenario file and prints its fleet.\n\nExample:\n  firmware-sim check-scenario firmware-sim/scenarios/storm.yaml\n")
		if len(args) == 1 {
			return exitOK
		}
		return exitUsage
	}
	sc, err := scenario.Load(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: %s\n", sc.Name, sc.Description)
	total := 0
	for _, g := range sc.Config.Groups {
		total += g.Count
		fmt.Fprintf(stdout, "  group %-10s %5d devices  rate %g/s  qos %d  %s", g.Name, g.Count, g.Rate, g.QoS, g.Payload)
		if g.Size.Max > 0 {
			fmt.Fprintf(stdout, " %s B", g.Size)
		}
		fmt.Fprintln(stdout)
	}
	for _, e := range sc.Config.Events {
		fmt.Fprintf(stdout, "  event %s at %v (down %v, jitter %v)\n", e.Kind, e.At, e.Down, e.Jitter)
	}
	fmt.Fprintf(stdout, "  %d devices, duration %v\n", total, sc.Config.Duration)
	return exitOK
}
