package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/firmware-sim/hist"
	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// group is a Group with its templates compiled.
type group struct {
	cfg   Group
	index int
	first int // fleet index of its first device
}

type fleet struct {
	cfg     Config
	groups  []*group
	devices []*device
	start   time.Time
	sched   *scheduler
	ready   chan *device
	c       counters
	hist    hist.Histogram
	ledger  *ledger.Writer

	genStopped  atomic.Bool
	sendStopped atomic.Bool
	stopping    chan struct{} // closed when the run starts shutting down
	remaining   atomic.Int64  // devices with a message count not yet done
	bounded     int           // devices with a message count
	allDone     chan struct{}
	doneOnce    sync.Once
}

// Run plays the fleet described by cfg against the broker until its
// messages are sent, its Duration elapses or ctx is cancelled, then waits
// up to cfg.Drain for outstanding acknowledgements, disconnects every
// device and returns the summary. The error is non-nil only for an
// invalid config or a ledger write failure; message failures are in the
// summary.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg = cfg.Defaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return Summary{}, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	f, err := build(cfg)
	if err != nil {
		return Summary{}, err
	}
	return f.run(ctx)
}

func build(cfg Config) (*fleet, error) {
	f := &fleet{cfg: cfg, stopping: make(chan struct{}), allDone: make(chan struct{})}
	if cfg.Ledger != nil {
		f.ledger = ledger.NewWriter(cfg.Ledger)
	}
	keyT, err := parseTemplate(cfg.LedgerKey, keyFields...)
	if err != nil {
		return nil, fmt.Errorf("%w: ledger key: %w", ErrInvalidConfig, err)
	}
	userT, err := parseTemplate(cfg.Username, keyFields...)
	if err != nil {
		return nil, fmt.Errorf("%w: username: %w", ErrInvalidConfig, err)
	}
	total := 0
	for _, g := range cfg.Groups {
		total += g.Count
	}
	f.devices = make([]*device, 0, total)
	f.ready = make(chan *device, total)
	for gi, gc := range cfg.Groups {
		g := &group{cfg: gc, index: gi, first: len(f.devices)}
		f.groups = append(f.groups, g)
		idT, _ := parseTemplate(gc.ID, "n", "i", "group")
		cidT, _ := parseTemplate(gc.ClientID, "n", "i", "group", "id")
		topT, _ := parseTemplate(gc.Topic, keyFields...)
		var unT template
		if u := gc.Behaviour.Unrouted; u != nil {
			unT, _ = parseTemplate(u.Topic, keyFields...)
		}
		// Choices about which devices misbehave come from their own
		// stream so that adding a behaviour does not reshuffle payloads.
		pick := rand.New(rand.NewPCG(cfg.Seed, uint64(gi)+0x5851f42d4c957f2d))
		chosen := func(frac float64) []bool {
			out := make([]bool, gc.Count)
			for _, i := range pick.Perm(gc.Count)[:int(frac*float64(gc.Count)+0.5)] {
				out[i] = true
			}
			return out
		}
		var slow, dup []bool
		if s := gc.Behaviour.Slow; s != nil {
			slow = chosen(s.Fraction)
		}
		if gc.Behaviour.DuplicateIDs > 0 {
			dup = chosen(gc.Behaviour.DuplicateIDs)
		}
		for n := 1; n <= gc.Count; n++ {
			idx := len(f.devices)
			v := tmplVars{n: n, i: idx + 1, group: gc.Name}
			v.id = idT.render(v)
			v.clientID = cidT.render(v)
			if dup != nil && dup[n-1] && n > 1 {
				v.clientID = f.devices[idx-1].client
			}
			d := &device{
				f: f, g: g, idx: idx, name: v.id, client: v.clientID,
				topic: topT.render(v), key: keyT.render(v), user: userT.render(v), nextSeq: 1,
			}
			if cfg.ClientCertDir != "" {
				if d.cert, err = deviceCert(cfg, d.name); err != nil {
					return nil, err
				}
			}
			if gc.Behaviour.Unrouted != nil {
				d.unrtd = unT.render(v)
			}
			if slow != nil && slow[n-1] {
				d.slow = gc.Behaviour.Slow
			}
			d.schedRNG.Seed(cfg.Seed+uint64(idx)*0x9e3779b97f4a7c15, 1)
			d.sendRNG.Seed(cfg.Seed+uint64(idx)*0x9e3779b97f4a7c15, 2)
			d.gen = payload.NewGenerator(d.name, cfg.Seed, uint64(idx), gc.Payload, gc.Mobile)
			if !cfg.CleanSession {
				d.skipAll = 1
			}
			d.store = newTrackingStore(d)
			d.mqtt = mqtt.NewClient(f.clientOptions(d))
			f.devices = append(f.devices, d)
			if gc.Messages > 0 {
				f.remaining.Add(1)
				f.bounded++
			}
		}
	}
	return f, nil
}

// deviceCert loads the device's own certificate and key.
func deviceCert(cfg Config, name string) (*tls.Certificate, error) {
	keyDir := cfg.ClientKeyDir
	if keyDir == "" {
		keyDir = cfg.ClientCertDir
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(cfg.ClientCertDir, name+".crt"), filepath.Join(keyDir, name+".key"))
	if err != nil {
		return nil, fmt.Errorf("%w: device %s: client certificate: %w", ErrInvalidConfig, name, err)
	}
	return &pair, nil
}

func (f *fleet) clientOptions(d *device) *mqtt.ClientOptions {
	c := f.cfg
	o := mqtt.NewClientOptions()
	o.AddBroker(c.Broker)
	o.SetClientID(d.client)
	o.SetUsername(d.user)
	o.SetPassword(c.Password)
	o.SetProtocolVersion(4)
	o.SetCleanSession(c.CleanSession)
	o.SetKeepAlive(c.KeepAlive)
	o.SetConnectTimeout(c.ConnectTimeout)
	o.SetWriteTimeout(c.WriteTimeout)
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(c.MaxReconnectInterval)
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(time.Second)
	o.SetResumeSubs(false)
	o.SetStore(d.store)
	o.SetCustomOpenConnectionFn(d.dial)
	o.SetOnConnectHandler(d.onConnect)
	o.SetConnectionLostHandler(d.onLost)
	o.SetReconnectingHandler(d.onReconnecting)
	return o
}

func (f *fleet) logf(format string, args ...any) {
	if f.cfg.Logf != nil {
		f.cfg.Logf(format, args...)
	}
}

func (f *fleet) deviceDone() {
	if f.remaining.Add(-1) == 0 {
		f.doneOnce.Do(func() { close(f.allDone) })
	}
}

func (f *fleet) workers() int {
	n := f.cfg.Workers
	if n <= 0 {
		n = max(8, 4*runtime.GOMAXPROCS(0))
	}
	return max(1, min(n, len(f.devices)))
}

func (f *fleet) run(ctx context.Context) (Summary, error) {
	cfg := f.cfg
	f.start = time.Now()
	f.sched = newScheduler(f.start)
	f.plan()

	stopSched := make(chan struct{})
	stopWorkers := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.sched.run(stopSched, f.fire)
	}()
	for range f.workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case d := <-f.ready:
					d.serve()
				case <-stopWorkers:
					return
				}
			}
		}()
	}
	stopHouse := make(chan struct{})
	houseDone := make(chan struct{})
	go func() {
		defer close(houseDone)
		f.housekeeping(stopHouse)
	}()

	// Phase 1: play until the end.
	var endTimer <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		endTimer = t.C
	}
	allDone := f.allDone
	if f.bounded < len(f.devices) {
		// Some devices never finish on their own: only time or ctx ends the run.
		allDone = nil
	}
	select {
	case <-ctx.Done():
	case <-endTimer:
		// Let the scheduler fire everything due before the end, so the
		// offered load is exactly Duration's worth however busy the box.
		f.sched.waitReached(cfg.Duration, ctx.Done())
	case <-allDone:
	}
	f.genStopped.Store(true)
	close(f.stopping) // held devices may come back to deliver their backlog
	sendEnd := time.Now()

	// Phase 2: deliver what was generated and wait for its acks, for at
	// most Drain; then nothing new is sent.
	drain := time.NewTimer(cfg.Drain)
	for f.c.inflight.Load() > 0 || f.c.queued.Load() > 0 {
		select {
		case <-drain.C:
			goto disconnect
		case <-time.After(5 * time.Millisecond):
		}
	}
	drain.Stop()
disconnect:
	f.sendStopped.Store(true)
	close(stopSched)
	f.disconnectAll()
	close(stopWorkers)
	wg.Wait()
	close(stopHouse)
	<-houseDone
	if cfg.Progress != nil {
		cfg.Progress(f.snapshot()) // the final state, however short the run
	}

	var unacked, unsent int
	never := 0
	for _, d := range f.devices {
		a, b := d.finish()
		unacked += a
		unsent += b
		if !d.ever {
			never++
		}
	}
	f.c.fail(rUnackedAtExit, uint64(unacked))
	var err error
	if f.ledger != nil {
		err = f.ledger.Close()
	}
	s := f.summary(sendEnd)
	s.Unsent = uint64(unsent)
	s.NeverConnected = never
	return s, err
}

// disconnectAll disconnects every client, a few at a time: paho's
// Disconnect waits for the DISCONNECT packet to be written.
func (f *fleet) disconnectAll() {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(64, len(f.devices)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(f.devices) {
					return
				}
				f.devices[i].mqtt.Disconnect(50)
			}
		}()
	}
	wg.Wait()
}

func (f *fleet) housekeeping(stop <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastProgress, lastFlush := time.Now(), time.Now()
	warnAt := time.Now().Add(f.cfg.Ramp + f.cfg.ConnectTimeout + time.Second)
	warned := false
	expiry := f.cfg.AckTimeout > 0
	for _, g := range f.groups {
		expiry = expiry || (g.cfg.Behaviour.Oversize != nil && g.cfg.QoS > 0)
	}
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if expiry {
				for _, d := range f.devices {
					d.expire(now)
				}
			}
			if !warned && now.After(warnAt) && f.c.connects.Load() == 0 {
				warned = true
				f.logf("no device has connected after %v (%d attempts): is %s reachable and accepting these credentials?",
					now.Sub(f.start).Round(time.Second), f.c.attempts.Load(), f.cfg.Broker)
			}
			if f.cfg.Progress != nil && now.Sub(lastProgress) >= f.cfg.ProgressInterval {
				lastProgress = now
				f.cfg.Progress(f.snapshot())
			}
			if f.ledger != nil && now.Sub(lastFlush) >= time.Second {
				lastFlush = now
				_ = f.ledger.Flush()
			}
		}
	}
}

func (f *fleet) snapshot() Snapshot {
	return Snapshot{
		Elapsed:   time.Since(f.start),
		Devices:   len(f.devices),
		Connected: f.c.connected.Load(),
		Generated: f.c.generated.Load(),
		Sent:      f.c.sent.Load(),
		Acked:     f.c.acked.Load(),
		Failed:    f.c.failedTotal(),
		InFlight:  f.c.inflight.Load(),
	}
}

func (f *fleet) summary(sendEnd time.Time) Summary {
	elapsed := time.Since(f.start)
	active := sendEnd.Sub(f.start)
	if last := time.Unix(0, f.c.lastAck.Load()); last.After(sendEnd) {
		active = last.Sub(f.start)
	}
	s := Summary{
		Devices:         len(f.devices),
		ElapsedSeconds:  elapsed.Seconds(),
		Generated:       f.c.generated.Load(),
		Sent:            f.c.sent.Load(),
		Acked:           f.c.acked.Load(),
		Failed:          f.c.failedTotal(),
		FailedBy:        map[string]uint64{},
		ProbesAcked:     f.c.probes.Load(),
		LateAcks:        f.c.lateAcks.Load(),
		Connects:        f.c.connects.Load(),
		ConnectionsLost: f.c.lost.Load(),
		Latency:         latencyOf(&f.hist),
	}
	for i, r := range reasons {
		s.FailedBy[r] = f.c.failed[i].Load()
	}
	if a := f.c.attempts.Load(); a > s.Connects {
		s.ConnectFailures = a - s.Connects
	}
	if f.ledger != nil {
		s.LedgerLines = f.ledger.Lines()
	}
	if active > 0 {
		s.MsgsPerSec = float64(s.Acked) / active.Seconds()
	}
	return s
}
