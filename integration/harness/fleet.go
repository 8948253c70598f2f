package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	simledger "github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// FleetOpts describes a small fleet of paho devices that behave like
// careful firmware: one message in flight, and after a lost connection or
// a missing PUBACK they reconnect and resend the same message, so nothing
// acknowledged is ever skipped and a device's order is its sequence order.
type FleetOpts struct {
	Broker  string // tcp://127.0.0.1:PORT
	Devices int    // default 10
	// Prefix names devices "<prefix>-00001"...; default "dev".
	Prefix string
	// Topic is a template with {id}; default "devices/{id}/telemetry".
	Topic string
	// Size is the payload size in bytes (JSON telemetry padded); default 200.
	Size int
	// QoS is 1 (default) or 2.
	QoS byte
	// Rate is messages per second per device; 0 = as fast as acks allow.
	Rate float64
	// AckTimeout makes a device drop its connection and resend when no
	// PUBACK arrives in time (default 5s).
	AckTimeout time.Duration
	// LedgerPath defaults to a file in t.TempDir().
	LedgerPath string
	Seed       uint64
}

// Fleet is a running fleet; see StartFleet.
type Fleet struct {
	t      testing.TB
	o      FleetOpts
	cancel context.CancelFunc
	wg     sync.WaitGroup
	file   *os.File
	lw     *simledger.Writer

	mu      sync.Mutex
	entries []simledger.Entry
	stopped bool

	acked    atomic.Uint64
	resends  atomic.Uint64
	connects atomic.Uint64
}

// FleetStats is what a fleet did.
type FleetStats struct {
	Acked, Resends, Connects uint64
}

// StartFleet connects the devices and starts publishing. Call Stop before
// reading the ledger; a fleet still running at the end of the test is
// stopped by a cleanup.
func StartFleet(t testing.TB, o FleetOpts) *Fleet {
	t.Helper()
	if o.Devices == 0 {
		o.Devices = 10
	}
	if o.Prefix == "" {
		o.Prefix = "dev"
	}
	if o.Topic == "" {
		o.Topic = "devices/{id}/telemetry"
	}
	if o.Size == 0 {
		o.Size = 200
	}
	if o.QoS == 0 {
		o.QoS = 1
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.LedgerPath == "" {
		o.LedgerPath = filepath.Join(t.TempDir(), "ledger.jsonl")
	}
	file, err := os.Create(o.LedgerPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{t: t, o: o, cancel: cancel, file: file, lw: simledger.NewWriter(file)}
	for i := 1; i <= o.Devices; i++ {
		d := &fleetDevice{f: f, id: fmt.Sprintf("%s-%05d", o.Prefix, i)}
		d.topic = strings.ReplaceAll(o.Topic, "{id}", d.id)
		d.gen = payload.NewGenerator(d.id, o.Seed, uint64(i), payload.JSON, false)
		d.rng = rand.New(rand.NewPCG(o.Seed, uint64(i)))
		f.wg.Add(1)
		go d.run(ctx)
	}
	t.Cleanup(func() { f.Stop() })
	return f
}

// Acked is the number of PUBACKs so far.
func (f *Fleet) Acked() uint64 { return f.acked.Load() }

// WaitAcked waits, at most d, until at least n messages were acknowledged.
func (f *Fleet) WaitAcked(n uint64, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for f.acked.Load() < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("harness: fleet: %d acks after %v, waited for %d (connects %d, resends %d)",
				f.acked.Load(), d, n, f.connects.Load(), f.resends.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Snapshot returns the ledger so far: every message acknowledged up to
// now. Taken right after Kill9, it is exactly what the dead gateway
// promised to have stored.
func (f *Fleet) Snapshot() *Ledger {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &Ledger{Entries: append([]simledger.Entry(nil), f.entries...)}
}

// Stop ends publishing, waits for the messages in flight to be acked or to
// time out, and closes the ledger file. It may be called more than once.
func (f *Fleet) Stop() FleetStats {
	f.mu.Lock()
	already := f.stopped
	f.stopped = true
	f.mu.Unlock()
	if !already {
		f.cancel()
		f.wg.Wait()
		if err := f.lw.Close(); err != nil {
			f.t.Errorf("harness: ledger: %v", err)
		}
		f.file.Close()
	}
	return FleetStats{Acked: f.acked.Load(), Resends: f.resends.Load(), Connects: f.connects.Load()}
}

// Ledger returns every acknowledged message, read back from the ledger
// file (so the file format is exercised too). Call after Stop.
func (f *Fleet) Ledger() *Ledger {
	f.t.Helper()
	f.Stop()
	return ReadLedger(f.t, f.o.LedgerPath)
}

// LedgerPath is the ledger file, in the firmware-sim format.
func (f *Fleet) LedgerPath() string { return f.o.LedgerPath }

type fleetDevice struct {
	f     *Fleet
	id    string
	topic string
	gen   *payload.Generator
	rng   *rand.Rand
}

func (d *fleetDevice) run(ctx context.Context) {
	defer d.f.wg.Done()
	var c mqtt.Client
	defer func() {
		if c != nil {
			c.Disconnect(50)
		}
	}()
	seq := uint64(1)
	var msg []byte // the unacknowledged message, resent as is
	next := time.Now()
	for ctx.Err() == nil {
		if c == nil {
			if c = d.connect(ctx); c == nil {
				continue
			}
		}
		if msg == nil {
			if d.f.o.Rate > 0 {
				if !sleepCtx(ctx, time.Until(next)) {
					return
				}
				next = next.Add(time.Duration(float64(time.Second) / d.f.o.Rate))
			}
			msg = d.gen.Next(seq, time.Now().UnixMilli(), d.f.o.Size)
		}
		tok := c.Publish(d.topic, d.f.o.QoS, false, msg)
		// Wait for the ack even when ctx is done, so a message in flight
		// at Stop still makes it into the ledger if it was acknowledged.
		if !tok.WaitTimeout(d.f.o.AckTimeout) || tok.Error() != nil {
			d.f.resends.Add(1)
			c.Disconnect(0)
			c = nil
			continue
		}
		d.f.record(simledger.Entry{Device: d.id, Seq: seq, Key: d.id, Ack: time.Now()})
		seq++
		msg = nil
	}
}

// connect makes one attempt; on failure it backs off (jittered, so a
// restarted gateway is not hit by the whole fleet at the same instant)
// and returns nil.
func (d *fleetDevice) connect(ctx context.Context) mqtt.Client {
	o := mqtt.NewClientOptions().AddBroker(d.f.o.Broker).SetClientID(d.id).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(2 * time.Second).SetWriteTimeout(2 * time.Second).
		SetKeepAlive(30 * time.Second).SetProtocolVersion(4)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if tok.WaitTimeout(3*time.Second) && tok.Error() == nil {
		d.f.connects.Add(1)
		return c
	}
	c.Disconnect(0)
	sleepCtx(ctx, time.Duration(20+d.rng.IntN(80))*time.Millisecond)
	return nil
}

func (f *Fleet) record(e simledger.Entry) {
	f.mu.Lock()
	f.entries = append(f.entries, e)
	f.mu.Unlock()
	f.acked.Add(1)
	if err := f.lw.Append(e); err != nil {
		f.t.Errorf("harness: ledger: %v", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
