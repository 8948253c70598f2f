package fleet

import (
	"sync/atomic"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/hist"
)

// Failure reasons, the keys of Summary.FailedBy.
const (
	// ReasonBufferFull: the device's offline/backlog buffer overflowed
	// and its oldest unsent message was dropped.
	ReasonBufferFull = "buffer_full"
	// ReasonAckTimeout: no acknowledgement within AckTimeout (or an
	// oversize probe's GiveUp); the device moved on.
	ReasonAckTimeout = "ack_timeout"
	// ReasonPublishError: paho reported an error for a QoS 0 write.
	ReasonPublishError = "publish_error"
	// ReasonUnackedAtExit: still unacknowledged when the run ended.
	ReasonUnackedAtExit = "unacked_at_exit"
)

// reasons is indexed by the r* constants.
var reasons = [...]string{ReasonBufferFull, ReasonAckTimeout, ReasonPublishError, ReasonUnackedAtExit}

const (
	rBufferFull = iota
	rAckTimeout
	rPublishError
	rUnackedAtExit
)

type counters struct {
	generated  atomic.Uint64
	sent       atomic.Uint64
	acked      atomic.Uint64
	failed     [len(reasons)]atomic.Uint64
	attempts   atomic.Uint64
	probes     atomic.Uint64
	lateAcks   atomic.Uint64
	connected  atomic.Int64
	connects   atomic.Uint64
	lost       atomic.Uint64
	connFails  atomic.Uint64
	inflight   atomic.Int64
	queued     atomic.Int64 // generated, not yet handed to paho
	lastAck    atomic.Int64 // unix ns of the latest ack
	ledgerErrs atomic.Uint64
}

func (c *counters) fail(reason int, n uint64) { c.failed[reason].Add(n) }

func (c *counters) failedTotal() uint64 {
	var t uint64
	for i := range c.failed {
		t += c.failed[i].Load()
	}
	return t
}

// Snapshot is the live state handed to Config.Progress.
type Snapshot struct {
	Elapsed   time.Duration
	Devices   int
	Connected int64
	Generated uint64
	Sent      uint64
	Acked     uint64
	Failed    uint64
	InFlight  int64
}

// Summary is the result of a run. The JSON field names are stable; see
// the CLI's --help for their meaning.
type Summary struct {
	Devices        int     `json:"devices"`
	ElapsedSeconds float64 `json:"elapsed_s"`
	// Generated counts messages the devices produced (the offered load).
	Generated uint64 `json:"generated"`
	// Sent counts first publish attempts handed to paho.
	Sent uint64 `json:"sent"`
	// Acked counts PUBACKs (QoS 1), PUBCOMPs (QoS 2) or socket writes
	// (QoS 0); it equals the number of ledger lines.
	Acked    uint64            `json:"acked"`
	Failed   uint64            `json:"failed"`
	FailedBy map[string]uint64 `json:"failed_by_reason"`
	// Unsent were generated but still buffered when the run ended.
	Unsent uint64 `json:"unsent"`
	// ProbesAcked counts acknowledged oversize/unrouted probes (included
	// in Acked).
	ProbesAcked uint64 `json:"probes_acked"`
	// LateAcks arrived after their device had given up on them.
	LateAcks uint64 `json:"late_acks"`
	// MsgsPerSec is Acked divided by the time from the start of the run
	// to the end of generation or the last ack, whichever is later.
	MsgsPerSec      float64 `json:"msgs_per_sec"`
	Connects        uint64  `json:"connects"`
	ConnectionsLost uint64  `json:"connections_lost"`
	ConnectFailures uint64  `json:"connect_failures"`
	NeverConnected  int     `json:"never_connected"`
	LedgerLines     uint64  `json:"ledger_lines"`
	// Latency is publish→ack in milliseconds.
	Latency Latency `json:"latency_ms"`
}

// Latency summarises the publish→ack histogram, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func latencyOf(h *hist.Histogram) Latency {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Latency{
		Count: h.Count(),
		Mean:  h.Mean() / 1e6,
		P50:   ms(h.Quantile(0.5)),
		P90:   ms(h.Quantile(0.9)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}
