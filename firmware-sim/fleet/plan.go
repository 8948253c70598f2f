package fleet

import (
	"math/rand/v2"
	"time"
)

// plan schedules the whole run: staggered connects, each device's first
// message, offline windows and fleet events.
func (f *fleet) plan() {
	n := len(f.devices)
	for i, d := range f.devices {
		var at time.Duration
		if f.cfg.Ramp > 0 && n > 1 {
			at = f.cfg.Ramp * time.Duration(i) / time.Duration(n)
		}
		f.sched.add(event{at: at, kind: evConnect, d: d})
		if r := d.g.cfg.Rate; r > 0 {
			// A random phase within the first interval, so a fleet started
			// together does not publish in lockstep.
			iv := time.Duration(float64(time.Second) / r)
			d.nextGen = at + time.Duration(float64(iv)*float64(d.schedRNG.Uint64()>>11)/(1<<53))
			f.sched.add(event{at: d.nextGen, kind: evGenerate, d: d})
		}
	}
	for gi, g := range f.groups {
		o := g.cfg.Behaviour.Offline
		if o == nil || o.Fraction == 0 {
			continue
		}
		pick := rand.New(rand.NewPCG(f.cfg.Seed, uint64(gi)+0x2545f4914f6cdd1d))
		k := int(o.Fraction*float64(g.cfg.Count) + 0.5)
		for _, j := range pick.Perm(g.cfg.Count)[:k] {
			at := o.After
			if o.Every > 0 {
				at += time.Duration(pick.Int64N(int64(o.Every)))
			}
			f.sched.add(event{at: at, kind: evOffline, d: f.devices[g.first+j]})
		}
	}
	for ei, e := range f.cfg.Events {
		pick := rand.New(rand.NewPCG(f.cfg.Seed, uint64(ei)+0x14057b7ef767814f))
		targets := f.eventTargets(e, pick)
		f.sched.add(event{at: e.At, kind: evFunc, fn: func(time.Duration) {
			now := time.Now()
			for _, d := range targets {
				hold := now.Add(e.Down)
				if e.Jitter > 0 {
					hold = hold.Add(time.Duration(pick.Int64N(int64(e.Jitter))))
				}
				d.holdUntil.Store(hold.UnixNano())
				d.requestCut()
			}
			f.logf("%s at %v: %d devices dropped", e.Kind, e.At, len(targets))
		}})
	}
}

func (f *fleet) eventTargets(e Event, pick *rand.Rand) []*device {
	var pool []*device
	for _, g := range f.groups {
		in := len(e.Groups) == 0
		for _, name := range e.Groups {
			in = in || name == g.cfg.Name
		}
		if in {
			pool = append(pool, f.devices[g.first:g.first+g.cfg.Count]...)
		}
	}
	if e.Fraction >= 1 {
		return pool
	}
	k := int(e.Fraction*float64(len(pool)) + 0.5)
	out := make([]*device, 0, k)
	for _, i := range pick.Perm(len(pool))[:k] {
		out = append(out, pool[i])
	}
	return out
}

// fire runs on the scheduler goroutine.
func (f *fleet) fire(ev event) {
	switch ev.kind {
	case evConnect:
		if !f.genStopped.Load() {
			ev.d.connect()
		}
	case evGenerate:
		d := ev.d
		if f.genStopped.Load() || (f.cfg.Duration > 0 && ev.at >= f.cfg.Duration) {
			return
		}
		d.generate(ev.at)
		d.mu.Lock()
		more := d.moreToGenerate()
		d.mu.Unlock()
		if !more {
			return
		}
		cfg := d.g.cfg
		iv := float64(time.Second) / cfg.Rate
		u := float64(d.schedRNG.Uint64()>>11)/(1<<53)*2 - 1
		// Absolute schedule: a late scheduler catches up instead of
		// lowering the offered rate.
		d.nextGen += time.Duration(iv * (1 + max(0, cfg.Jitter)*u))
		f.sched.add(event{at: d.nextGen, kind: evGenerate, d: d})
	case evOffline:
		d := ev.d
		o := d.g.cfg.Behaviour.Offline
		d.holdUntil.Store(time.Now().Add(o.For).UnixNano())
		d.requestCut()
		if o.Every > 0 {
			f.sched.add(event{at: ev.at + o.Every, kind: evOffline, d: d})
		}
	case evFunc:
		ev.fn(ev.at)
	}
}
