package fleet

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText prints the summary for a human.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, f string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(f, a...)) }
	p("devices", "%d (never connected: %d)", s.Devices, s.NeverConnected)
	p("elapsed", "%.2fs", s.ElapsedSeconds)
	p("generated", "%d", s.Generated)
	p("sent", "%d", s.Sent)
	p("acked", "%d (%.1f msgs/s; probes %d)", s.Acked, s.MsgsPerSec, s.ProbesAcked)
	p("failed", "%d", s.Failed)
	for _, r := range reasons {
		if n := s.FailedBy[r]; n > 0 {
			p("  "+r, "%d", n)
		}
	}
	p("unsent", "%d", s.Unsent)
	if s.LateAcks > 0 {
		p("late acks", "%d", s.LateAcks)
	}
	p("connects", "%d (lost %d, failed attempts %d)", s.Connects, s.ConnectionsLost, s.ConnectFailures)
	if s.LedgerLines > 0 {
		p("ledger lines", "%d", s.LedgerLines)
	}
	l := s.Latency
	if l.Count == 0 {
		p("publish→ack", "no acknowledgements")
		return tw.Flush()
	}
	p("publish→ack", "p50 %s  p90 %s  p99 %s  p999 %s  max %s  (n=%d)", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), l.Count)
	return tw.Flush()
}

func ms(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 100:
		return fmt.Sprintf("%.2fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}
