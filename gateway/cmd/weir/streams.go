package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weir-gateway/weir/gateway/api"
)

// defaultAPI is api.listen's default.
const defaultAPI = "http://127.0.0.1:4588"

const streamsSynopsis = `weir streams [--api URL] [--json]

Lists a running gateway's streams (shards, retention, size, records) and, per
stream, its registered consumers and forwarders with their lag. --json prints
the answer of the API's WeirGateway_20261125.DescribeGateway as is (see
gateway/api/API.md).`

func cmdStreams(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("streams", streamsSynopsis, stderr)
	endpoint := fs.String("api", defaultAPI, "the gateway's API (api.listen)")
	asJSON := fs.Bool("json", false, "print the DescribeGateway JSON")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "weir streams: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw := newAPIClient(*endpoint)
	body, err := gw.call(ctx, "WeirGateway_20261125.DescribeGateway", struct{}{})
	if err != nil {
		fmt.Fprintln(stderr, "weir streams:", err)
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
	printStreams(stdout, out)
	return 0
}

// printStreams renders DescribeGateway as two aligned tables: streams, then
// consumers and forwarders.
func printStreams(w io.Writer, out api.DescribeGatewayOutput) {
	if len(out.Streams) == 0 {
		fmt.Fprintln(w, "no streams")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSTATUS\tOPEN\tCLOSED\tRETENTION\tRECORDS\tBYTES")
	consumers := 0
	for _, s := range out.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\n", s.StreamName, s.StreamStatus, s.OpenShardCount, s.ClosedShardCount,
			retention(time.Duration(s.RetentionSeconds*float64(time.Second))), s.Records, humanBytes(s.Bytes))
		consumers += len(s.Consumers)
	}
	tw.Flush()
	if consumers == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tLAG\tLAG BYTES\tOLDEST\tLOST\tSTATE\tLAST ERROR")
	for _, s := range out.Streams {
		for _, c := range s.Consumers {
			lagBytes, state, lastErr := "-", "-", "-"
			if c.Kind == "forwarder" {
				lagBytes, state = humanBytes(c.LagBytes), c.State
				if c.LastError != "" {
					lastErr = oneLine(c.LastError)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", s.StreamName, c.ConsumerName, c.LagRecords, lagBytes,
				age(c.LagSeconds), c.RecordsLost, state, lastErr)
		}
	}
	tw.Flush()
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

// apiClient makes the CLI's own calls to a gateway's API (JSON 1.1, POST /
// with X-Amz-Target), with errors phrased for an operator.
type apiClient struct {
	endpoint string
	hc       *http.Client
}

func newAPIClient(endpoint string) *apiClient {
	return &apiClient{endpoint: strings.TrimRight(endpoint, "/"),
		hc: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}}
}

// apiError is an error answer of the gateway.
type apiError struct {
	Code, Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// call posts in to the operation and returns the answer's body.
func (c *apiClient) call(ctx context.Context, target string, in any) ([]byte, error) {
	if !strings.HasPrefix(c.endpoint, "http://") && !strings.HasPrefix(c.endpoint, "https://") {
		return nil, fmt.Errorf("--api %q must be an http:// or https:// URL", c.endpoint)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the gateway at %s (is it running, with api.listen on that address?): %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", c.endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &eb) != nil || eb.Type == "" {
			return nil, fmt.Errorf("%s answered %s to %s: %.200s", c.endpoint, resp.Status, target, b)
		}
		return nil, &apiError{Code: eb.Type, Message: eb.Message}
	}
	return b, nil
}

// checkStream fails clearly when the gateway is unreachable or has no such
// stream, before a consumer would start retrying.
func (c *apiClient) checkStream(ctx context.Context, stream string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.call(ctx, "WeirGateway_20261125.DescribeGateway", map[string]string{"StreamName": stream})
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "ResourceNotFoundException" {
		return fmt.Errorf("stream %q not found at %s", stream, c.endpoint)
	}
	return err
}
