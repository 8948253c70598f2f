package verify

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/ledger"
)

// RunOptions tune Verify.
type RunOptions struct {
	Options
	Envelope Envelope
	// Wait keeps polling the stream for up to this long while messages are
	// missing (a forwarder may still be catching up). 0: one pass.
	Wait time.Duration
	// Poll is the pause between passes and empty reads (default 200ms).
	Poll time.Duration
}

// Verify reads stream through api and checks it against the ledger.
func Verify(ctx context.Context, api API, stream string, entries []ledger.Entry, o RunOptions) (Report, error) {
	r := NewReader(api, stream)
	if o.Poll > 0 {
		r.Poll = o.Poll
	}
	deadline := time.Now().Add(o.Wait)
	var occs []Occurrence
	foreign := 0
	for {
		recs, err := r.Pass(ctx)
		for _, rec := range recs {
			id, derr := Decode(rec.Data, o.Envelope)
			if derr != nil {
				foreign++
				continue
			}
			occs = append(occs, Occurrence{Device: id.Device, Seq: id.Seq, TS: id.TS, PartitionKey: rec.PartitionKey, Shard: rec.Shard, SequenceNum: rec.SequenceNum})
		}
		if err != nil {
			return Report{}, err
		}
		rep := Check(entries, occs, foreign, o.Options)
		if rep.Missing == 0 || !time.Now().Before(deadline) {
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, nil
		case <-time.After(r.Poll):
		}
	}
}

// WriteText prints the report: totals, then up to maxDevices devices with
// problems.
func (r *Report) WriteText(w io.Writer, maxDevices int) error {
	fmt.Fprintf(w, "devices %d  expected %d  found %d  missing %d  duplicated %d  out-of-order %d\n",
		r.Devices, r.Expected, r.Found, r.Missing, r.Duplicated, r.OutOfOrder)
	fmt.Fprintf(w, "records read %d  extra %d  probes stored %d  key mismatches %d  foreign %d  skipped %d  unknown devices %d\n",
		r.Records, r.Extra, r.ProbesFound, r.KeyMismatch, r.Foreign, r.Skipped, r.UnknownDevice)
	if len(r.Problems) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "device\texpected\tfound\tmissing\tduplicated\tout of order")
	for i, d := range r.Problems {
		if maxDevices > 0 && i == maxDevices {
			fmt.Fprintf(tw, "... and %d more devices\n", len(r.Problems)-i)
			break
		}
		var oo []string
		for _, x := range d.OutOfOrder {
			oo = append(oo, fmt.Sprintf("%d after %d", x.Seq, x.After))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", d.Device, d.Expected, d.Found,
			Ranges(d.Missing, 10), Ranges(d.Duplicated, 10), limit(oo, 5))
	}
	return tw.Flush()
}

// Ranges renders sorted numbers compactly: "3-7,12,15-16", at most n runs.
func Ranges(v []uint64, n int) string {
	if len(v) == 0 {
		return "-"
	}
	var parts []string
	for i := 0; i < len(v); {
		j := i
		for j+1 < len(v) && (v[j+1] == v[j]+1 || v[j+1] == v[j]) {
			j++
		}
		if len(parts) == n {
			parts = append(parts, "…")
			break
		}
		if j == i || v[j] == v[i] {
			parts = append(parts, strconv.FormatUint(v[i], 10))
		} else {
			parts = append(parts, strconv.FormatUint(v[i], 10)+"-"+strconv.FormatUint(v[j], 10))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func limit(s []string, n int) string {
	if len(s) == 0 {
		return "-"
	}
	if len(s) > n {
		return strings.Join(s[:n], ", ") + fmt.Sprintf(" (+%d)", len(s)-n)
	}
	return strings.Join(s, ", ")
}
