package harness

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	simledger "github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// Ledger is what a fleet (this package's or firmware-sim's) recorded as
// acknowledged: one entry per PUBACK, in the firmware-sim ledger format.
type Ledger struct {
	Entries []simledger.Entry
}

// ReadLedger parses a firmware-sim ledger file (`firmware-sim --ledger`).
func ReadLedger(t testing.TB, path string) *Ledger {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("harness: ledger: %v", err)
	}
	defer f.Close()
	es, err := simledger.Read(f)
	if err != nil {
		t.Fatalf("harness: ledger %s: %v", path, err)
	}
	return &Ledger{Entries: es}
}

// Report counts what CheckLedger found.
type Report struct {
	Devices    int // devices with at least one acknowledged message
	Acked      int // ledger entries (probes excluded)
	Stored     int // dumped records carrying a simulator payload
	Foreign    int // dumped records that are not simulator payloads
	Duplicates int // stored copies beyond the first of one (device, seq)
	// UnackedStored counts distinct messages stored but never
	// acknowledged: the gateway died or the run ended between the fsync
	// and the PUBACK. Allowed: at-least-once.
	UnackedStored int
	Missing       int // acknowledged but not stored: data loss
	OutOfOrder    int // stored first occurrences out of device order
	WrongKey      int // stored under another partition key than the ledger expects
}

func (r Report) String() string {
	return fmt.Sprintf("devices=%d acked=%d stored=%d duplicates=%d unacked_stored=%d foreign=%d missing=%d out_of_order=%d wrong_key=%d",
		r.Devices, r.Acked, r.Stored, r.Duplicates, r.UnackedStored, r.Foreign, r.Missing, r.OutOfOrder, r.WrongKey)
}

type msgID struct {
	device string
	seq    uint64
}

// CheckLedger asserts the gateway's promise against what it stored:
// every acknowledged message is in the dump, under the partition key the
// ledger expects, and each device's messages keep their order: taking
// the first stored copy of each message, the device's acknowledged
// messages appear in their sequence order. Duplicates (a resend after a
// lost PUBACK) are allowed and counted. It also checks that sequence
// numbers strictly increase within each shard.
func CheckLedger(t testing.TB, l *Ledger, dumped []Line) Report {
	t.Helper()
	var r Report
	var problems []string
	report := func(f string, a ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(f, a...))
		}
	}

	// Position of each message's first stored copy, per device, in dump
	// order (shard by shard, sequence order within a shard).
	first := map[msgID]int{}
	firstKey := map[msgID]string{}
	lastSeq := map[string]uint64{}
	for i, ln := range dumped {
		if prev, ok := lastSeq[ln.Shard]; ok && ln.Seq <= prev {
			report("shard %s: seq %d follows %d", ln.Shard, ln.Seq, prev)
		}
		lastSeq[ln.Shard] = ln.Seq
		id, err := payload.Decode(ln.Data)
		if err != nil {
			r.Foreign++
			continue
		}
		r.Stored++
		m := msgID{id.Device, id.Seq}
		if _, dup := first[m]; dup {
			r.Duplicates++
			continue
		}
		first[m] = i
		firstKey[m] = ln.Key
	}

	perDevice := map[string][]simledger.Entry{}
	acked := map[msgID]bool{}
	for _, e := range l.Entries {
		if e.Probe != "" {
			continue
		}
		r.Acked++
		acked[msgID{e.Device, e.Seq}] = true
		perDevice[e.Device] = append(perDevice[e.Device], e)
	}
	r.Devices = len(perDevice)
	for m := range first {
		if !acked[m] {
			r.UnackedStored++
		}
	}

	devices := make([]string, 0, len(perDevice))
	for d := range perDevice {
		devices = append(devices, d)
	}
	sort.Strings(devices)
	for _, d := range devices {
		es := perDevice[d]
		sort.SliceStable(es, func(i, j int) bool { return es[i].Seq < es[j].Seq })
		lastPos, lastSeq := -1, uint64(0)
		for _, e := range es {
			m := msgID{d, e.Seq}
			pos, ok := first[m]
			if !ok {
				r.Missing++
				report("missing: %s seq %d (acked %s)", d, e.Seq, e.Ack.Format("15:04:05.000000"))
				continue
			}
			if e.Key != "" && firstKey[m] != e.Key {
				r.WrongKey++
				report("wrong key: %s seq %d stored under %q, ledger expects %q", d, e.Seq, firstKey[m], e.Key)
			}
			if pos < lastPos {
				r.OutOfOrder++
				report("out of order: %s seq %d stored before seq %d", d, e.Seq, lastSeq)
			}
			if pos > lastPos {
				lastPos, lastSeq = pos, e.Seq
			}
		}
	}
	t.Logf("harness: ledger check: %s", r)
	if len(problems) > 0 {
		t.Errorf("harness: the dump does not keep the ledger's promises (%s):\n  %s", r, strings.Join(problems, "\n  "))
	}
	return r
}
