package verify

import (
	"slices"
	"sort"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/ledger"
)

// Occurrence is one stream record attributed to a device.
type Occurrence struct {
	Device       string
	Seq          uint64
	TS           int64 // payload timestamp, unix ms
	PartitionKey string
	Shard        string
	SequenceNum  string
}

// Options tune Check.
type Options struct {
	// Since ignores occurrences whose payload timestamp is older (records
	// left in the stream by earlier runs with the same device names).
	Since time.Time
}

// Reorder is a message found after a higher sequence number of its device.
type Reorder struct {
	Seq   uint64 `json:"seq"`
	After uint64 `json:"after"` // the highest seq read before it
}

// DeviceReport is the verdict for one device.
type DeviceReport struct {
	Device      string    `json:"device"`
	Expected    int       `json:"expected"` // ledger entries that must be in the stream
	Found       int       `json:"found"`    // of those, how many were
	Missing     []uint64  `json:"missing,omitempty"`
	Duplicated  []uint64  `json:"duplicated,omitempty"` // each extra copy listed once per copy
	OutOfOrder  []Reorder `json:"out_of_order,omitempty"`
	Extra       int       `json:"extra,omitempty"`        // in the stream, not in the ledger
	Probes      int       `json:"probes_found,omitempty"` // unrouted/oversize probes that got stored
	KeyMismatch int       `json:"key_mismatch,omitempty"` // partition key differs from the ledger's
}

// OK reports whether the device has no missing or reordered messages.
func (d *DeviceReport) OK() bool { return len(d.Missing) == 0 && len(d.OutOfOrder) == 0 }

// Report is the verdict for a whole ledger.
type Report struct {
	Devices       int            `json:"devices"`
	Expected      int            `json:"expected"`
	Found         int            `json:"found"`
	Missing       int            `json:"missing"`
	Duplicated    int            `json:"duplicated"`
	OutOfOrder    int            `json:"out_of_order"`
	Extra         int            `json:"extra"`
	ProbesFound   int            `json:"probes_found"`
	KeyMismatch   int            `json:"key_mismatch"`
	Records       int            `json:"records"`         // records read from the stream
	Foreign       int            `json:"foreign"`         // records that are not simulator payloads
	Skipped       int            `json:"skipped"`         // older than Options.Since
	UnknownDevice int            `json:"unknown_devices"` // devices in the stream, not in the ledger
	Problems      []DeviceReport `json:"problems"`        // devices with anything to report, sorted by name
}

// Failed applies the exit rule: any loss or reordering fails; duplicates
// and key mismatches only when asked.
func (r *Report) Failed(strictDups, strictKeys bool) bool {
	return r.Missing > 0 || r.OutOfOrder > 0 || (strictDups && r.Duplicated > 0) || (strictKeys && r.KeyMismatch > 0)
}

type expect struct {
	key   string
	probe bool
}

// Check matches stream occurrences (in read order) against the ledger.
// foreign is the number of records that could not be attributed.
func Check(entries []ledger.Entry, occs []Occurrence, foreign int, o Options) Report {
	led := map[string]map[uint64]expect{}
	for _, e := range entries {
		m := led[e.Device]
		if m == nil {
			m = map[uint64]expect{}
			led[e.Device] = m
		}
		m[e.Seq] = expect{key: e.Key, probe: e.Probe != ""}
	}
	byDev := map[string][]Occurrence{}
	r := Report{Records: len(occs) + foreign, Foreign: foreign}
	for _, oc := range occs {
		if !o.Since.IsZero() && oc.TS < o.Since.UnixMilli() {
			r.Skipped++
			continue
		}
		byDev[oc.Device] = append(byDev[oc.Device], oc)
	}
	for dev := range byDev {
		if _, ok := led[dev]; !ok {
			r.UnknownDevice++
		}
	}
	names := make([]string, 0, len(led))
	for dev := range led {
		names = append(names, dev)
	}
	sort.Strings(names)
	r.Devices = len(names)
	for _, dev := range names {
		d := checkDevice(dev, led[dev], byDev[dev])
		r.Expected += d.Expected
		r.Found += d.Found
		r.Missing += len(d.Missing)
		r.Duplicated += len(d.Duplicated)
		r.OutOfOrder += len(d.OutOfOrder)
		r.Extra += d.Extra
		r.ProbesFound += d.Probes
		r.KeyMismatch += d.KeyMismatch
		if !d.OK() || len(d.Duplicated) > 0 || d.KeyMismatch > 0 {
			r.Problems = append(r.Problems, d)
		}
	}
	return r
}

func checkDevice(dev string, want map[uint64]expect, got []Occurrence) DeviceReport {
	d := DeviceReport{Device: dev}
	seen := make(map[uint64]bool, len(got))
	var maxSeq uint64
	for _, oc := range got {
		if seen[oc.Seq] {
			d.Duplicated = append(d.Duplicated, oc.Seq)
			continue
		}
		seen[oc.Seq] = true
		if oc.Seq < maxSeq {
			d.OutOfOrder = append(d.OutOfOrder, Reorder{Seq: oc.Seq, After: maxSeq})
		}
		maxSeq = max(maxSeq, oc.Seq)
		e, ok := want[oc.Seq]
		switch {
		case !ok:
			d.Extra++
		case e.probe:
			d.Probes++
		default:
			if e.key != "" && oc.PartitionKey != "" && e.key != oc.PartitionKey {
				d.KeyMismatch++
			}
		}
	}
	for seq, e := range want {
		if e.probe {
			continue
		}
		d.Expected++
		if seen[seq] {
			d.Found++
		} else {
			d.Missing = append(d.Missing, seq)
		}
	}
	slices.Sort(d.Missing)
	slices.Sort(d.Duplicated)
	return d
}
