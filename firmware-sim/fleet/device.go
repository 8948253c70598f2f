package fleet

import (
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/firmware-sim/ledger"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// Probe kinds: deliberate misbehaviour messages.
const (
	probeNone uint8 = iota
	probeUnrouted
	probeOversize
)

var probeNames = [...]string{"", "unrouted", "oversize"}

// pending is a generated message not yet handed to paho.
type pending struct {
	seq uint64
	ts  int64 // unix ms, when it was generated
}

// flight is a message handed to paho and not yet resolved.
type flight struct {
	seq      uint64
	mid      uint16 // paho message id; 0 until paho stored it (QoS ≥ 1)
	probe    uint8
	sent     time.Time
	deadline time.Time // zero: wait forever
}

// device is one simulated device. It owns no goroutine: the scheduler
// generates its messages, a worker publishes them and paho's own
// goroutines deliver its acknowledgements through its store.
type device struct {
	f      *fleet
	g      *group
	idx    int // across the fleet, from 0
	name   string
	client string           // MQTT client id
	user   string           // MQTT username
	cert   *tls.Certificate // own client certificate (Config.ClientCertDir)
	topic  string
	unrtd  string // topic for unrouted probes
	key    string // ledger key
	slow   *Slow
	mqtt   mqtt.Client
	store  *trackingStore

	link      atomic.Pointer[link]
	holdUntil atomic.Int64 // unix ns; no connection before then

	// Owned by whoever holds the device: the scheduler for schedRNG and
	// nextGen, the worker that dequeued it for gen and sendRNG.
	schedRNG rand.PCG
	sendRNG  rand.PCG
	nextGen  time.Duration
	gen      *payload.Generator

	mu        sync.Mutex
	queued    bool // in the ready channel or being served by a worker
	conns     int  // connections up (OnConnect calls)
	resumes   int  // paho set-ups finished (store All/Reset after a connect)
	skipAll   int  // All() calls that are not resumes (see resumed)
	ever      bool // has connected at least once
	barrier   bool // hold new publishes until resent ones are acked
	done      bool // reached its message count and resolved everything
	closed    bool // final accounting done; ignore late events
	nextSeq   uint64
	queue     []pending
	qHead     int
	inflight  []flight
	connected bool
	// A simulated cut waits for a publish in progress (publishing) and
	// holds new ones until the next connection (cutting): paho resends
	// what is in its store on reconnect, and a Publish still blocked in
	// paho across the reconnect would send the same packet a second time.
	publishing bool
	pendingCut bool
	cutting    bool
}

func (d *device) queueLen() int { return len(d.queue) - d.qHead }

func (d *device) pushPending(p pending) {
	d.f.c.queued.Add(1)
	if d.qHead > 0 && d.qHead == len(d.queue) {
		d.queue, d.qHead = d.queue[:0], 0
	}
	d.queue = append(d.queue, p)
}

func (d *device) popPending() pending {
	d.f.c.queued.Add(-1)
	p := d.queue[d.qHead]
	d.qHead++
	if d.qHead == len(d.queue) {
		d.queue, d.qHead = d.queue[:0], 0
	} else if d.qHead > 64 && d.qHead*2 > len(d.queue) {
		n := copy(d.queue, d.queue[d.qHead:])
		d.queue, d.qHead = d.queue[:n], 0
	}
	return p
}

// unpop puts a message back at the head of the queue (paho refused it).
func (d *device) unpop(p pending) {
	d.f.c.queued.Add(1)
	if d.qHead > 0 {
		d.qHead--
		d.queue[d.qHead] = p
		return
	}
	d.queue = append(d.queue, pending{})
	copy(d.queue[1:], d.queue)
	d.queue[0] = p
}

// moreToGenerate reports whether the device may still produce messages.
func (d *device) moreToGenerate() bool {
	if d.f.genStopped.Load() {
		return false
	}
	return d.g.cfg.Messages == 0 || d.nextSeq <= uint64(d.g.cfg.Messages)
}

// canSendLocked decides whether a worker should publish for this device.
func (d *device) canSendLocked() bool {
	if d.closed || d.cutting || d.conns == 0 || d.resumes < d.conns || d.f.sendStopped.Load() || !d.mqtt.IsConnectionOpen() {
		return false
	}
	if len(d.inflight) >= d.g.cfg.Inflight || (d.barrier && len(d.inflight) > 0) {
		return false
	}
	return d.queueLen() > 0 || (d.g.cfg.Rate == 0 && d.moreToGenerate())
}

// wakeLocked marks the device queued if it has work; the caller must then
// send it to the ready channel after unlocking.
func (d *device) wakeLocked() bool {
	if d.queued || !d.canSendLocked() {
		return false
	}
	d.queued = true
	return true
}

func (d *device) wake() {
	d.mu.Lock()
	w := d.wakeLocked()
	d.mu.Unlock()
	if w {
		d.f.ready <- d
	}
}

// checkDoneLocked counts the device as finished once it generated all its
// messages and every one of them is resolved.
func (d *device) checkDoneLocked() {
	if d.done || d.g.cfg.Messages == 0 || d.nextSeq <= uint64(d.g.cfg.Messages) {
		return
	}
	if d.queueLen() == 0 && len(d.inflight) == 0 {
		d.done = true
		d.f.deviceDone()
	}
}

// generate is the scheduler producing one message at time at.
func (d *device) generate(at time.Duration) {
	d.mu.Lock()
	if d.closed || !d.moreToGenerate() {
		d.mu.Unlock()
		return
	}
	d.f.c.generated.Add(1)
	d.pushPending(pending{seq: d.nextSeq, ts: d.f.start.Add(at).UnixMilli()})
	d.nextSeq++
	if d.queueLen() > d.f.cfg.Buffer {
		d.popPending()
		d.f.c.fail(rBufferFull, 1)
	}
	w := d.wakeLocked()
	d.checkDoneLocked()
	d.mu.Unlock()
	if w {
		d.f.ready <- d
	}
}

// serve is a worker publishing for the device until it has no more work
// (or a fairness budget is spent and the device goes to the back).
func (d *device) serve() {
	for range 16 {
		d.mu.Lock()
		if !d.canSendLocked() {
			d.queued = false
			d.checkDoneLocked()
			d.mu.Unlock()
			return
		}
		var p pending
		if d.queueLen() > 0 {
			p = d.popPending()
		} else { // rate 0: generate on demand
			p = pending{seq: d.nextSeq, ts: time.Now().UnixMilli()}
			d.nextSeq++
			d.f.c.generated.Add(1)
		}
		d.inflight = append(d.inflight, flight{seq: p.seq})
		d.f.c.inflight.Add(1)
		d.publishing = true
		d.mu.Unlock()
		d.publish(p)
		d.mu.Lock()
		d.publishing = false
		cut := d.pendingCut
		d.pendingCut = false
		d.mu.Unlock()
		if cut {
			d.cut()
		}
	}
	d.f.ready <- d // still queued: back of the line
}

func (d *device) rand01() float64 { return float64(d.sendRNG.Uint64()>>11) / (1 << 53) }

func (d *device) publish(p pending) {
	cfg := &d.g.cfg
	topic, probe, size := d.topic, probeNone, cfg.Size.Min
	if cfg.Size.Max > cfg.Size.Min {
		size += int(d.sendRNG.Uint64() % uint64(cfg.Size.Max-cfg.Size.Min+1))
	}
	if o := cfg.Behaviour.Oversize; o != nil && o.Probability > 0 && d.rand01() < o.Probability {
		probe, size = probeOversize, o.Size
	} else if u := cfg.Behaviour.Unrouted; u != nil && u.Probability > 0 && d.rand01() < u.Probability {
		probe, topic = probeUnrouted, d.unrtd
	}
	body := d.gen.Next(p.seq, p.ts, size)

	now := time.Now()
	var deadline time.Time
	if t := d.f.cfg.AckTimeout; t > 0 {
		deadline = now.Add(t)
	}
	if probe == probeOversize && cfg.QoS > 0 {
		if g := cfg.Behaviour.Oversize.GiveUp; deadline.IsZero() || now.Add(g).Before(deadline) {
			deadline = now.Add(g)
		}
	}
	d.mu.Lock()
	for i := len(d.inflight) - 1; i >= 0; i-- {
		if fl := &d.inflight[i]; fl.seq == p.seq && fl.mid == 0 {
			fl.probe, fl.sent, fl.deadline = probe, now, deadline
			break
		}
	}
	d.mu.Unlock()
	d.f.c.sent.Add(1)

	tok := d.mqtt.Publish(topic, cfg.QoS, false, body)
	if cfg.QoS == 0 {
		ok := tok.WaitTimeout(d.f.cfg.WriteTimeout+time.Second) && tok.Error() == nil
		d.resolveQoS0(p.seq, ok)
		return
	}
	select {
	case <-tok.Done():
	default:
		return // normal case: the ack will come through the store
	}
	if tok.Error() == nil {
		return
	}
	// Paho refused without storing (not connected, no ids left): take the
	// message back if it never got an id, so it is sent later in order.
	d.mu.Lock()
	for i := range d.inflight {
		if d.inflight[i].seq == p.seq && d.inflight[i].mid == 0 {
			d.inflight = append(d.inflight[:i], d.inflight[i+1:]...)
			d.f.c.inflight.Add(-1)
			d.f.c.sent.Add(^uint64(0))
			if errors.Is(tok.Error(), mqtt.ErrNotConnected) {
				d.unpop(p)
			} else {
				d.f.c.fail(rPublishError, 1)
				d.f.logf("%s: publish seq %d: %v", d.name, p.seq, tok.Error())
			}
			break
		}
	}
	d.mu.Unlock()
}

// stored is paho persisting the message this device is publishing.
func (d *device) stored(mid uint16) {
	d.mu.Lock()
	for i := len(d.inflight) - 1; i >= 0; i-- {
		if d.inflight[i].mid == 0 {
			d.inflight[i].mid = mid
			break
		}
	}
	d.mu.Unlock()
}

// acked is paho deleting message mid from its store on PUBACK/PUBCOMP.
func (d *device) acked(mid uint16) {
	now := time.Now()
	d.mu.Lock()
	for i := range d.inflight {
		if d.inflight[i].mid == mid {
			w := d.resolveLocked(i, true, now)
			d.mu.Unlock()
			if w {
				d.f.ready <- d
			}
			return
		}
	}
	if !d.closed {
		d.f.c.lateAcks.Add(1)
	}
	d.mu.Unlock()
}

// resolveQoS0 settles a QoS 0 message once paho wrote it (or failed to).
func (d *device) resolveQoS0(seq uint64, ok bool) {
	now := time.Now()
	d.mu.Lock()
	w := false
	for i := range d.inflight {
		if d.inflight[i].seq == seq && d.inflight[i].mid == 0 {
			w = d.resolveLocked(i, ok, now)
			break
		}
	}
	d.mu.Unlock()
	if w {
		d.f.ready <- d
	}
}

// resolveLocked settles in-flight message i as acknowledged or failed and
// reports whether the caller must send the device to the ready channel.
func (d *device) resolveLocked(i int, ok bool, now time.Time) bool {
	if d.closed {
		return false
	}
	fl := d.inflight[i]
	d.inflight = append(d.inflight[:i], d.inflight[i+1:]...)
	d.f.c.inflight.Add(-1)
	if ok {
		d.f.hist.Record(int64(now.Sub(fl.sent)))
		d.f.c.acked.Add(1)
		if ns := now.UnixNano(); ns > d.f.c.lastAck.Load() {
			d.f.c.lastAck.Store(ns) // racy max is fine: only a rate's end point
		}
		if fl.probe != probeNone {
			d.f.c.probes.Add(1)
		}
		if lw := d.f.ledger; lw != nil {
			// Under d.mu so that a device's lines are in ack order.
			e := ledger.Entry{Device: d.name, Seq: fl.seq, Key: d.key, Ack: now, Probe: probeNames[fl.probe]}
			if err := lw.Append(e); err != nil {
				d.f.c.ledgerErrs.Add(1)
			}
		}
	} else {
		d.f.c.fail(rPublishError, 1)
	}
	if len(d.inflight) == 0 {
		d.barrier = false
	}
	w := d.wakeLocked()
	d.checkDoneLocked()
	return w
}

// expire gives up on messages past their deadline. Giving up removes the
// message from paho's store too, so a reconnect does not resend it.
func (d *device) expire(now time.Time) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	n := 0
	for i := 0; i < len(d.inflight); i++ {
		fl := d.inflight[i]
		if fl.deadline.IsZero() || now.Before(fl.deadline) || fl.mid == 0 {
			continue
		}
		d.store.forget(fl.mid)
		d.inflight = append(d.inflight[:i], d.inflight[i+1:]...)
		i--
		n++
	}
	if n == 0 {
		d.mu.Unlock()
		return
	}
	d.f.c.inflight.Add(int64(-n))
	d.f.c.fail(rAckTimeout, uint64(n))
	if len(d.inflight) == 0 {
		d.barrier = false
	}
	w := d.wakeLocked()
	d.checkDoneLocked()
	d.mu.Unlock()
	if w {
		d.f.ready <- d
	}
}

// resumed is paho finishing a connection's set-up (see trackingStore):
// All from resume, or Reset. With a persistent session, Connect itself
// lists the store once first (to reserve message ids, before it even
// dials); that call is skipped.
func (d *device) resumed(fromAll bool) {
	d.mu.Lock()
	if fromAll && d.skipAll > 0 {
		d.skipAll--
		d.mu.Unlock()
		return
	}
	d.resumes++
	d.mu.Unlock()
	d.wake()
}

// connect starts paho's connect loop (it retries until Disconnect).
func (d *device) connect() { d.mqtt.Connect() }

func (d *device) onConnect(mqtt.Client) {
	d.f.c.connects.Add(1)
	d.mu.Lock()
	if !d.connected {
		d.connected = true
		d.f.c.connected.Add(1)
	}
	d.ever = true
	d.conns++
	d.cutting = false
	// Whatever was in flight is being resent by paho right now; newer
	// messages wait until it is acknowledged so they cannot overtake it.
	if len(d.inflight) > 0 {
		d.barrier = true
	}
	d.mu.Unlock()
	d.wake()
}

func (d *device) onLost(mqtt.Client, error) {
	d.f.c.lost.Add(1)
	d.mu.Lock()
	if d.connected && !d.mqtt.IsConnectionOpen() {
		d.connected = false
		d.f.c.connected.Add(-1)
	}
	if len(d.inflight) > 0 {
		d.barrier = true
	}
	d.mu.Unlock()
}

// requestCut drops the device's connection as a lost uplink would, once
// no publish of its own is in progress.
func (d *device) requestCut() {
	d.mu.Lock()
	if d.link.Load() == nil || d.closed {
		d.mu.Unlock()
		return
	}
	d.cutting = true
	if d.publishing {
		d.pendingCut = true
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.cut()
}

// finish does the final accounting: unresolved messages fail, buffered
// ones are unsent. Later acks are ignored.
func (d *device) finish() (inflight, unsent int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	inflight, unsent = len(d.inflight), d.queueLen()
	d.f.c.queued.Add(int64(-unsent))
	d.inflight, d.queue, d.qHead = nil, nil, 0
	return inflight, unsent
}
