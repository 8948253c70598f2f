package fleet

import (
	"bytes"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weir-gateway/weir/firmware-sim/internal/testbroker"
	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// orderCheck records, at the broker, the first arrival of each (device,
// seq) and flags any that arrives after a higher seq of the same device.
type orderCheck struct {
	mu       sync.Mutex
	max      map[string]uint64
	seen     map[string]map[uint64]bool
	reorders int
	dups     int
}

func newOrderCheck() *orderCheck {
	return &orderCheck{max: map[string]uint64{}, seen: map[string]map[uint64]bool{}}
}

func (o *orderCheck) hook(_ *mochi.Client, pk packets.Packet) error {
	id, err := payload.Decode(pk.Payload)
	if err != nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[id.Device] == nil {
		o.seen[id.Device] = map[uint64]bool{}
	}
	if o.seen[id.Device][id.Seq] {
		o.dups++
		return nil
	}
	o.seen[id.Device][id.Seq] = true
	if id.Seq < o.max[id.Device] {
		o.reorders++
	}
	o.max[id.Device] = max(o.max[id.Device], id.Seq)
	return nil
}

func checkLedger(t *testing.T, led *bytes.Buffer, sum Summary) []ledger.Entry {
	t.Helper()
	entries, err := ledger.Read(led)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(entries)) != sum.Acked {
		t.Fatalf("ledger %d lines, acked %d", len(entries), sum.Acked)
	}
	last := map[string]uint64{}
	for _, e := range entries {
		if e.Seq <= last[e.Device] {
			t.Fatalf("%s: ledger seq %d after %d", e.Device, e.Seq, last[e.Device])
		}
		last[e.Device] = e.Seq
	}
	return entries
}

func TestReconnectStormReconnectsEveryDevice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter time.Duration
	}{{"at-once", 0}, {"jittered", 700 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			oc := newOrderCheck()
			b := testbroker.Start(t, testbroker.Options{OnPublish: oc.hook})
			var led bytes.Buffer
			const n = 60
			cfg := Config{
				Broker: b.URL, CleanSession: true, Seed: 3, Ledger: &led,
				Duration: 3 * time.Second,
				Groups:   []Group{{Name: "d", Count: n, Rate: 10, QoS: 1}},
				Events:   []Event{{At: time.Second, Kind: "storm", Jitter: tc.jitter}},
			}
			start := time.Now()
			sum, err := Run(ctxT(t, 15*time.Second), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v: %+v", time.Since(start), sum)
			if got := b.Connects(); got != 2*n {
				t.Fatalf("broker accepted %d connects, want %d (every device twice)", got, 2*n)
			}
			for i := 1; i <= n; i += 7 {
				id := "d-" + pad5(i)
				if c := b.ConnectsOf(id); c != 2 {
					t.Fatalf("%s connected %d times", id, c)
				}
			}
			if sum.Connects != 2*n || sum.ConnectionsLost != n {
				t.Fatalf("summary connects %d lost %d", sum.Connects, sum.ConnectionsLost)
			}
			if sum.Failed != 0 || sum.Acked != sum.Generated {
				t.Fatalf("generated %d acked %d failed %v", sum.Generated, sum.Acked, sum.FailedBy)
			}
			checkLedger(t, &led, sum)
			if oc.reorders != 0 {
				t.Fatalf("broker saw %d reordered messages", oc.reorders)
			}
		})
	}
}

func pad5(i int) string {
	s := "0000" + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
	if i >= 100 {
		panic("pad5: small numbers only")
	}
	return s[len(s)-5:]
}

func TestOfflineDevicesBufferAndResendInOrder(t *testing.T) {
	oc := newOrderCheck()
	b := testbroker.Start(t, testbroker.Options{OnPublish: oc.hook})
	var led bytes.Buffer
	cfg := Config{
		Broker: b.URL, CleanSession: true, Seed: 5, Ledger: &led,
		Duration: 2500 * time.Millisecond,
		Groups: []Group{{
			Name: "o", Count: 10, Rate: 20, QoS: 1,
			Behaviour: Behaviour{Offline: &Offline{Fraction: 0.5, After: 500 * time.Millisecond, For: time.Second}},
		}},
	}
	sum, err := Run(ctxT(t, 15*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum)
	if sum.ConnectionsLost != 5 || sum.Connects != 15 {
		t.Fatalf("lost %d connects %d, want 5 and 15", sum.ConnectionsLost, sum.Connects)
	}
	if sum.Failed != 0 || sum.Acked != sum.Generated {
		t.Fatalf("generated %d acked %d failed %v unsent %d", sum.Generated, sum.Acked, sum.FailedBy, sum.Unsent)
	}
	entries := checkLedger(t, &led, sum)
	if oc.reorders != 0 {
		t.Fatalf("%d reorders at the broker", oc.reorders)
	}
	// Five devices went quiet for about a second and then caught up: a
	// gap in their ack times followed by a burst of their buffered messages.
	byDev := map[string][]ledger.Entry{}
	for _, e := range entries {
		byDev[e.Device] = append(byDev[e.Device], e)
	}
	caughtUp := 0
	for dev, es := range byDev {
		if len(es) < 40 {
			t.Fatalf("%s: only %d messages acked of ~50 generated", dev, len(es))
		}
		for i := 1; i < len(es); i++ {
			if es[i].Ack.Sub(es[i-1].Ack) < 800*time.Millisecond {
				continue
			}
			burst := 0
			for j := i; j < len(es) && es[j].Ack.Sub(es[i].Ack) < 200*time.Millisecond; j++ {
				burst++
			}
			if burst < 10 {
				t.Fatalf("%s: only %d messages right after its outage", dev, burst)
			}
			caughtUp++
		}
	}
	if caughtUp != 5 {
		t.Fatalf("%d devices caught up after an outage, want 5", caughtUp)
	}
}

func TestUnroutedAndOversizeProbes(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{MaxPacketSize: 16 << 10})
	var led bytes.Buffer
	cfg := Config{
		Broker: b.URL, CleanSession: true, Seed: 11, Ledger: &led,
		MaxReconnectInterval: 500 * time.Millisecond,
		Groups: []Group{
			{Name: "u", Count: 5, Messages: 40, QoS: 1,
				Behaviour: Behaviour{Unrouted: &Unrouted{Probability: 0.25}}},
			{Name: "x", Count: 4, Messages: 6, QoS: 1,
				Behaviour: Behaviour{Oversize: &Oversize{Probability: 0.3, Size: 64 << 10, GiveUp: 300 * time.Millisecond}}},
		},
	}
	sum, err := Run(ctxT(t, 18*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum)
	entries := checkLedger(t, &led, sum)
	unrouted := 0
	for _, e := range entries {
		if e.Probe == "unrouted" {
			unrouted++
		}
		if e.Probe == "oversize" {
			t.Fatalf("oversize message acked by a broker that refuses it: %+v", e)
		}
	}
	if unrouted == 0 || int64(unrouted) != b.PublishesTo("unrouted/") || uint64(unrouted) != sum.ProbesAcked {
		t.Fatalf("unrouted ledger %d, broker %d, summary %d", unrouted, b.PublishesTo("unrouted/"), sum.ProbesAcked)
	}
	// Every oversize probe was given up on; everything else was acked.
	over := sum.FailedBy[ReasonAckTimeout]
	if over == 0 || sum.Acked+over != 5*40+4*6 || sum.Failed != over {
		t.Fatalf("acked %d + oversize %d != %d (failed %v)", sum.Acked, over, 5*40+4*6, sum.FailedBy)
	}
	if sum.ConnectionsLost < over {
		t.Fatalf("broker should have cut a connection per oversize probe: lost %d, probes %d", sum.ConnectionsLost, over)
	}
}

func TestAckTimeoutWhenBrokerNeverAcks(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{OnPublish: func(*mochi.Client, packets.Packet) error {
		return packets.ErrRejectPacket // no PUBACK, connection stays open
	}})
	cfg := Config{
		Broker: b.URL, CleanSession: true, AckTimeout: 200 * time.Millisecond,
		Groups: []Group{{Count: 3, Messages: 3, QoS: 1}},
	}
	sum, err := Run(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Acked != 0 || sum.FailedBy[ReasonAckTimeout] != 9 {
		t.Fatalf("acked %d, failed %v; want 9 ack timeouts", sum.Acked, sum.FailedBy)
	}
}

func TestUnackedAtExitAndDrain(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{OnPublish: func(*mochi.Client, packets.Packet) error {
		return packets.ErrRejectPacket
	}})
	cfg := Config{
		Broker: b.URL, CleanSession: true, Duration: 700 * time.Millisecond, Drain: 200 * time.Millisecond,
		Groups: []Group{{Count: 4, Rate: 20, QoS: 1}},
	}
	start := time.Now()
	sum, err := Run(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("run took %v; drain should bound it", el)
	}
	// One in flight per device; the rest stayed buffered.
	if sum.FailedBy[ReasonUnackedAtExit] != 4 || sum.Unsent+4 != sum.Generated {
		t.Fatalf("unacked %d unsent %d generated %d", sum.FailedBy[ReasonUnackedAtExit], sum.Unsent, sum.Generated)
	}
}

func TestDuplicateClientIDsFlap(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	cfg := Config{
		Broker: b.URL, CleanSession: true, Seed: 2, Duration: 2 * time.Second,
		MaxReconnectInterval: 300 * time.Millisecond,
		Groups:               []Group{{Name: "d", Count: 10, Rate: 5, QoS: 1, Behaviour: Behaviour{DuplicateIDs: 0.4}}},
	}
	sum, err := Run(ctxT(t, 15*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ids := b.ClientIDs(); ids != 6 {
		t.Fatalf("%d distinct client ids, want 6", ids)
	}
	if sum.ConnectionsLost == 0 || b.Connects() <= 10 {
		t.Fatalf("duplicates should kick each other off: lost %d, broker connects %d", sum.ConnectionsLost, b.Connects())
	}
	t.Logf("%+v", sum)
}

func TestSlowDevicesAreSlow(t *testing.T) {
	b := testbroker.Start(t, testbroker.Options{})
	cfg := Config{
		Broker: b.URL, CleanSession: true,
		Groups: []Group{
			{Name: "fast", Count: 4, Messages: 10, QoS: 1},
			{Name: "slow", Count: 2, Messages: 5, QoS: 1, Behaviour: Behaviour{Slow: &Slow{Fraction: 1, Latency: 80 * time.Millisecond, Bandwidth: 64 << 10}}},
		},
	}
	start := time.Now()
	sum, err := Run(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Acked != 50 || sum.Latency.Max < 80 || time.Since(start) < 5*80*time.Millisecond {
		t.Fatalf("acked %d, max latency %.1fms after %v", sum.Acked, sum.Latency.Max, time.Since(start))
	}
}

func TestValidateNamesFields(t *testing.T) {
	cfg := Config{
		Broker: "http://x",
		Groups: []Group{{Name: "a", Count: 0, Rate: -1, QoS: 3, ID: "{nope}"}, {Name: "a", Count: 1}},
		Events: []Event{{Kind: "quake", Groups: []string{"zzz"}}},
	}.Defaults()
	errs := cfg.Validate()
	want := []string{"broker:", "groups[0].count", "groups[0].rate", "groups[0].qos", "groups[0].id", "groups[1].name", "events[0].type", "events[0].groups"}
	joined := ""
	for _, e := range errs {
		joined += e.Error() + "\n"
	}
	for _, w := range want {
		if !bytes.Contains([]byte(joined), []byte(w)) {
			t.Errorf("no error about %s in:\n%s", w, joined)
		}
	}
}

// TestPersistentSessionStorm: with CleanSession false paho lists its store
// once inside Connect (reserving ids) before any resume; the device must
// not mistake that for a resume, and must resume correctly after a storm.
func TestPersistentSessionStorm(t *testing.T) {
	oc := newOrderCheck()
	b := testbroker.Start(t, testbroker.Options{OnPublish: oc.hook})
	var led bytes.Buffer
	cfg := Config{
		Broker: b.URL, CleanSession: false, Seed: 9, Ledger: &led, Duration: 2 * time.Second,
		Groups: []Group{{Name: "p", Count: 20, Rate: 10, QoS: 1, Inflight: 3}},
		Events: []Event{{At: 700 * time.Millisecond, Kind: "storm", Jitter: 200 * time.Millisecond}},
	}
	sum, err := Run(ctxT(t, 15*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Connects != 40 || sum.Failed != 0 || sum.Acked != sum.Generated || sum.Acked < 300 {
		t.Fatalf("%+v", sum)
	}
	checkLedger(t, &led, sum)
	if oc.reorders != 0 {
		t.Fatalf("%d reorders at the broker", oc.reorders)
	}
}
