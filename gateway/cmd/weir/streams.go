package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/gateway/apiclient"
)

// defaultAPI is api.listen's default.
const defaultAPI = "http://127.0.0.1:4588"

const streamsSynopsis = `weir streams [--api URL] [--json] [--verbose] [--profile NAME] [--ca-file FILE]

Lists a running gateway's streams (shards, retention, records, size) and, per
stream, its registered consumers and forwarders with their lag, then the room
left on the data directory's filesystem. DATA is what the records take, DISK
what the stream's files occupy on disk (whole preallocated segments and the
next one prepared: what max_bytes counts). A forwarder's
reason for pausing and its last error follow the table, one line each, cut
to fit a terminal; --verbose prints them whole. --json prints
the answer of the API's WeirGateway_20261125.DescribeGateway as is (see
gateway/api/API.md).` + credentialsHelp

// credentialsHelp ends the synopsis of every command that calls the API.
const credentialsHelp = `

Credentials: requests are signed (AWS SigV4) with the standard AWS chain:
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else --profile (or AWS_PROFILE) from
~/.aws/credentials and ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE,
AWS_CONFIG_FILE). Without any they go unsigned, which a gateway without
api.credentials_file accepts. The EC2 metadata service is never asked.
An https:// --api is verified against the system's CAs and --ca-file (or
AWS_CA_BUNDLE).`

// apiFlags are the flags of every command that calls the API.
type apiFlags struct {
	endpoint, profile, caFile string
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.endpoint, "api", defaultAPI, "the gateway's API (api.listen), http:// or https://")
	fs.StringVar(&a.profile, "profile", "", "AWS profile whose credentials sign the requests (default $AWS_PROFILE, else the environment's keys or \"default\")")
	fs.StringVar(&a.caFile, "ca-file", "", "PEM file of the CA that signed an https gateway's certificate (default $AWS_CA_BUNDLE)")
}

// client returns the API client the flags describe; its debug line about
// unsigned requests goes nowhere, as unsigned is the loopback default.
func (a *apiFlags) client() (*apiclient.Client, error) {
	return apiclient.New(apiclient.Options{Endpoint: a.endpoint, Profile: a.profile, CAFile: a.caFile})
}

func cmdStreams(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("streams", streamsSynopsis, stderr)
	var af apiFlags
	af.register(fs)
	asJSON := fs.Bool("json", false, "print the DescribeGateway JSON")
	verbose := fs.Bool("verbose", false, "print forwarders' states and last errors whole")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "weir streams: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw, err := af.client()
	if err != nil {
		fmt.Fprintln(stderr, "weir streams:", err)
		return 2
	}
	body, err := gw.Raw(ctx, api.WeirTargetPrefix+"DescribeGateway", struct{}{})
	if err != nil {
		fmt.Fprintln(stderr, "weir streams:", explain(err))
		return 1
	}
	if *asJSON {
		var b bytes.Buffer
		if err := json.Indent(&b, body, "", "  "); err != nil {
			fmt.Fprintln(stderr, "weir streams: the gateway sent invalid JSON:", err)
			return 1
		}
		b.WriteByte('\n')
		_, _ = stdout.Write(b.Bytes())
		return 0
	}
	var out api.DescribeGatewayOutput
	if err := json.Unmarshal(body, &out); err != nil {
		fmt.Fprintln(stderr, "weir streams: cannot read the gateway's answer:", err)
		return 1
	}
	printStreams(stdout, out, *verbose)
	return 0
}

// noteWidth is how long a line under the consumer table may get without
// --verbose: rows stay readable in a 120-column terminal.
const noteWidth = 120

// printStreams renders DescribeGateway as two aligned tables: streams, then
// consumers and forwarders, whose long states and errors follow the second
// table, one line per forwarder, so no row grows with them.
func printStreams(w io.Writer, out api.DescribeGatewayOutput, verbose bool) {
	if len(out.Streams) == 0 {
		fmt.Fprintln(w, "no streams")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSTATUS\tOPEN\tCLOSED\tRETENTION\tRECORDS\tDATA\tDISK")
	consumers := 0
	for _, s := range out.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\n", s.StreamName, s.StreamStatus, s.OpenShardCount, s.ClosedShardCount,
			retention(time.Duration(s.RetentionSeconds*float64(time.Second))), s.Records, humanBytes(s.DataBytes), humanBytes(s.Bytes))
		consumers += len(s.Consumers)
	}
	tw.Flush()
	defer printDataDir(w, out.DataDir)
	if consumers == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tLAG\tLAG BYTES\tOLDEST\tLOST\tSTATE")
	var notes []string
	for _, s := range out.Streams {
		for _, c := range s.Consumers {
			lagBytes, state := "-", "-"
			if c.Kind == "forwarder" {
				var why string
				lagBytes = humanBytes(c.LagBytes)
				state, why, _ = strings.Cut(c.State, ":")
				if n := forwarderNote(s.StreamName+"/"+c.ConsumerName, strings.TrimSpace(why), c.LastError, verbose); n != "" {
					notes = append(notes, n)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", s.StreamName, c.ConsumerName, c.LagRecords, lagBytes,
				age(c.LagSeconds), c.RecordsLost, state)
		}
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
}

// printDataDir ends the listing with the room left for the streams.
func printDataDir(w io.Writer, d *api.GatewayDataDir) {
	if d == nil || d.SizeBytes <= 0 {
		return
	}
	fmt.Fprintf(w, "\ndata directory: %s free of %s (%.0f%%)\n", humanBytes(d.FreeBytes), humanBytes(d.SizeBytes),
		100*float64(d.FreeBytes)/float64(d.SizeBytes))
}

// forwarderNote is the line under the table for a forwarder with a reason
// for its state or a last error: "stream/consumer: paused: why; last error:
// err", cut to noteWidth unless verbose.
func forwarderNote(name, why, lastErr string, verbose bool) string {
	var parts []string
	if why != "" {
		parts = append(parts, oneLine(why))
	}
	if lastErr != "" {
		parts = append(parts, "last error: "+oneLine(lastErr))
	}
	if len(parts) == 0 {
		return ""
	}
	n := name + ": " + strings.Join(parts, "; ")
	if !verbose && len(n) > noteWidth {
		const more = "… (--verbose)"
		cut := noteWidth - len(more)
		for cut > 0 && !utf8.RuneStart(n[cut]) {
			cut--
		}
		n = n[:cut] + more
	}
	return n
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// retention prints a whole number of days or hours when it is one (the
// usual case), else Go's duration.
func retention(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// age prints the age of the oldest unprocessed record, "-" when caught up.
func age(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	d := time.Duration(seconds * float64(time.Second))
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// oneLine keeps a multi-line error from breaking the table.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// explain phrases an API error for an operator.
func explain(err error) error {
	var ue *apiclient.UnreachableError
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot reach the gateway at %s (is it running, with api.listen on that address?): %w", ue.Endpoint, ue.Err)
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		switch ae.Type {
		case "MissingAuthenticationTokenException", "UnrecognizedClientException", "InvalidSignatureException":
			return fmt.Errorf("%s: %s (the gateway requires API credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use --profile with a key of its api.credentials_file)", ae.Type, ae.Message)
		case "AccessDeniedException":
			return fmt.Errorf("%s: %s (the key has no permission for this; see the gateway's api.credentials_file)", ae.Type, ae.Message)
		}
	}
	return err
}

// checkStream fails clearly when the gateway is unreachable or has no such
// stream, before a consumer would start retrying.
func checkStream(ctx context.Context, gw *apiclient.Client, stream string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := gw.DescribeGateway(ctx, stream)
	if apiclient.TypeOf(err) == "ResourceNotFoundException" {
		return fmt.Errorf("stream %q not found at %s", stream, gw.Endpoint())
	}
	return explain(err)
}
