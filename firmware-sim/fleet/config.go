package fleet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// ErrInvalidConfig wraps every validation error returned by Run.
var ErrInvalidConfig = errors.New("fleet: invalid config")

// Config describes a fleet run. Zero values take the defaults documented
// on each field (see Defaults).
type Config struct {
	// Broker is tcp://host:port, mqtt://, ssl://, tls:// or mqtts://
	// (the last three connect with TLS).
	Broker string
	// Username is a template rendered for each device ({id}, {client_id},
	// {n}, {i}, {group}), so that every device can log in as itself; ""
	// sends no username.
	Username string
	// Password is sent as is by every device.
	Password string
	// TLS is used for ssl://, tls:// and mqtts:// brokers; nil means the
	// system roots and no client certificate.
	TLS *tls.Config
	// ClientCertDir gives each device a client certificate of its own:
	// ClientCertDir/<id>.crt, with its key in ClientKeyDir/<id>.key
	// (ClientKeyDir defaults to ClientCertDir), where <id> is the device
	// name. It overrides TLS.Certificates; a missing pair fails the run
	// before any device connects.
	ClientCertDir string
	ClientKeyDir  string

	Groups []Group
	Events []Event

	// Duration ends the run; 0 means until every device has sent its
	// Messages (or until ctx is cancelled when Messages is 0).
	Duration time.Duration
	// Ramp spreads the initial connects evenly over this long.
	Ramp time.Duration
	// Seed makes payloads, jitter and behaviour choices reproducible.
	Seed uint64

	// CleanSession is sent in CONNECT. Defaults to true in the CLI; the Go
	// zero value (false) means a persistent session.
	CleanSession bool
	// KeepAlive (default 30s), ConnectTimeout (10s), WriteTimeout (10s)
	// and MaxReconnectInterval (10s) go straight to paho.
	KeepAlive            time.Duration
	ConnectTimeout       time.Duration
	WriteTimeout         time.Duration
	MaxReconnectInterval time.Duration
	// AckTimeout makes a device give up on an unacknowledged message
	// (counted as failed "ack_timeout") and move on; 0 waits forever,
	// like most firmware.
	AckTimeout time.Duration
	// Drain bounds how long the run keeps delivering, after generation
	// stopped, what devices still buffer and waits for outstanding acks
	// (default 5s); then it disconnects.
	Drain time.Duration
	// Buffer is how many generated-but-unsent messages a device keeps
	// (offline or backlogged) before dropping its oldest; default 1000.
	Buffer int
	// Workers publish on behalf of ready devices (default 4×GOMAXPROCS,
	// at least 8). Devices themselves have no goroutine.
	Workers int

	// Ledger receives one line per acknowledged message (see package
	// ledger); nil disables it. Run flushes but does not close it.
	Ledger io.Writer
	// LedgerKey renders each ledger line's key; default "{id}".
	LedgerKey string

	// Progress, if set, is called every ProgressInterval (default 1s)
	// from a single goroutine, and once more at the end of the run.
	Progress         func(Snapshot)
	ProgressInterval time.Duration

	// Logf receives rare diagnostic lines (nil: discarded).
	Logf func(format string, args ...any)
}

// Group is a set of identical devices.
type Group struct {
	Name  string // default "dev"
	Count int
	// ID names devices; default "{group}-{n:05}" ("dev-00001").
	ID string
	// ClientID is the MQTT client id; default "{id}".
	ClientID string
	// Topic; default "devices/{id}/telemetry".
	Topic string
	// Messages per device; 0 = unbounded (until Duration).
	Messages int
	// Rate is messages per second per device; 0 = as fast as acks allow.
	Rate float64
	// Jitter spreads each interval uniformly by ±Jitter×interval
	// (0..1; 0 means the default 0.1, negative means none); the mean
	// rate is exact either way.
	Jitter float64
	QoS    byte
	// Inflight is how many unacknowledged messages a device may have
	// (default 1, like firmware that waits for each PUBACK).
	Inflight int
	Payload  payload.Format
	Size     SizeRange
	// Mobile assets add GPS fields that random-walk.
	Mobile    bool
	Behaviour Behaviour
}

// Behaviour switches on misbehaviour for a fraction of a group.
type Behaviour struct {
	// Slow devices sit behind a slow link.
	Slow *Slow
	// Offline devices lose their network periodically, buffer what they
	// generate and resend it in order when back.
	Offline *Offline
	// DuplicateIDs is the fraction of devices that reuse the previous
	// device's client id (brokers kick the older session: both flap).
	DuplicateIDs float64
	// Oversize sends some messages far above the gateway's size limit.
	Oversize *Oversize
	// Unrouted sends some messages to a topic no route covers.
	Unrouted *Unrouted
}

// Slow adds latency and caps bandwidth on every write of a device's link.
type Slow struct {
	Fraction  float64
	Latency   time.Duration
	Bandwidth int // bytes per second; 0 = unlimited
}

// Offline takes devices off the network for For, every Every (each device
// at its own phase); Every 0 means once, starting at After.
type Offline struct {
	Fraction float64
	After    time.Duration
	Every    time.Duration
	For      time.Duration
}

// Oversize replaces a message with one of Size bytes with the given
// probability. Devices give up on an unacknowledged oversize message after
// GiveUp (default 5s), since a gateway that refuses it by disconnecting
// would otherwise see it resent forever.
type Oversize struct {
	Probability float64
	Size        int
	GiveUp      time.Duration
}

// Unrouted publishes a message to Topic (default "unrouted/{id}") instead
// of the group's topic with the given probability.
type Unrouted struct {
	Probability float64
	Topic       string
}

// Event is something that happens to many devices at once.
type Event struct {
	At time.Duration
	// Kind is "storm" (connections drop, devices come back after Down
	// plus a uniform 0..Jitter delay) or "outage" (same, but Down is
	// usually long: the uplink is gone and devices buffer).
	Kind     string
	Down     time.Duration
	Jitter   time.Duration
	Fraction float64  // of the selected devices; default 1
	Groups   []string // default all groups
}

// Defaults returns cfg with zero fields filled in.
func (cfg Config) Defaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.KeepAlive, 30*time.Second)
	def(&cfg.ConnectTimeout, 10*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.MaxReconnectInterval, 10*time.Second)
	def(&cfg.Drain, 5*time.Second)
	def(&cfg.ProgressInterval, time.Second)
	if cfg.Buffer == 0 {
		cfg.Buffer = 1000
	}
	if cfg.LedgerKey == "" {
		cfg.LedgerKey = "{id}"
	}
	gs := make([]Group, len(cfg.Groups))
	for i, g := range cfg.Groups {
		if g.Name == "" {
			g.Name = "dev"
		}
		if g.ID == "" {
			g.ID = "{group}-{n:05}"
		}
		if g.ClientID == "" {
			g.ClientID = "{id}"
		}
		if g.Topic == "" {
			g.Topic = "devices/{id}/telemetry"
		}
		if g.Inflight == 0 {
			g.Inflight = 1
		}
		if g.Jitter == 0 {
			g.Jitter = 0.1
		}
		if o := g.Behaviour.Oversize; o != nil && o.GiveUp == 0 {
			c := *o
			c.GiveUp = 5 * time.Second
			g.Behaviour.Oversize = &c
		}
		if u := g.Behaviour.Unrouted; u != nil && u.Topic == "" {
			c := *u
			c.Topic = "unrouted/{id}"
			g.Behaviour.Unrouted = &c
		}
		gs[i] = g
	}
	cfg.Groups = gs
	es := make([]Event, len(cfg.Events))
	for i, e := range cfg.Events {
		if e.Fraction == 0 {
			e.Fraction = 1
		}
		es[i] = e
	}
	cfg.Events = es
	return cfg
}

// Validate reports every problem, each naming the field
// ("groups[1].rate: ..."). Call it on Defaults().
func (cfg Config) Validate() []error {
	var ps problems
	cfg.validateConnection(&ps)
	cfg.validateRun(&ps)
	names := map[string]bool{}
	total := 0
	for i, g := range cfg.Groups {
		p := fmt.Sprintf("groups[%d]", i)
		if names[g.Name] {
			ps.add(p+".name", "duplicate group name %q", g.Name)
		}
		names[g.Name] = true
		total += g.Count
		g.validate(p, &ps)
	}
	if total > 1_000_000 {
		ps.add("groups", "%d devices is more than this simulator is meant for (1,000,000)", total)
	}
	for i, e := range cfg.Events {
		e.validate(fmt.Sprintf("events[%d]", i), cfg.Duration, names, &ps)
	}
	return ps
}

// problems collects what Validate finds, each error prefixed with its field.
type problems []error

func (ps *problems) add(field, f string, a ...any) {
	*ps = append(*ps, fmt.Errorf("%s: %s", field, fmt.Sprintf(f, a...)))
}

// validateConnection checks how devices reach the broker.
func (cfg Config) validateConnection(ps *problems) {
	if u, err := url.Parse(cfg.Broker); err != nil || u.Host == "" {
		ps.add("broker", "want a URL like tcp://127.0.0.1:1883, got %q", cfg.Broker)
	} else if !schemeOK(u.Scheme) {
		ps.add("broker", "scheme %q not supported (tcp, mqtt, ssl, tls, mqtts)", u.Scheme)
	}
	if _, err := parseTemplate(cfg.Username, keyFields...); err != nil {
		ps.add("username", "%v", err)
	}
	if cfg.ClientKeyDir != "" && cfg.ClientCertDir == "" {
		ps.add("client_key_dir", "needs client_cert_dir")
	}
	if u, err := url.Parse(cfg.Broker); err == nil && cfg.ClientCertDir != "" && !tlsScheme(u.Scheme) {
		ps.add("client_cert_dir", "client certificates need a TLS broker URL (ssl://, tls:// or mqtts://), got %q", cfg.Broker)
	}
}

// validateRun checks the settings of the run as a whole.
func (cfg Config) validateRun(ps *problems) {
	if len(cfg.Groups) == 0 {
		ps.add("groups", "at least one group of devices is needed")
	}
	if cfg.Duration < 0 || cfg.Ramp < 0 || cfg.AckTimeout < 0 || cfg.Drain < 0 {
		ps.add("duration", "durations must not be negative")
	}
	if cfg.Buffer < 1 {
		ps.add("buffer", "must be at least 1")
	}
	if _, err := parseTemplate(cfg.LedgerKey, keyFields...); err != nil {
		ps.add("ledger_key", "%v", err)
	}
}

// validate checks one group but for its name, which must be unique among
// the groups; p is its path ("groups[1]").
func (g Group) validate(p string, ps *problems) {
	if g.Count < 1 {
		ps.add(p+".count", "must be at least 1, got %d", g.Count)
	}
	if g.Messages < 0 {
		ps.add(p+".messages", "must not be negative")
	}
	if g.Rate < 0 {
		ps.add(p+".rate", "must not be negative, got %v", g.Rate)
	}
	if g.Jitter > 1 {
		ps.add(p+".jitter", "must be within 0..1, got %v", g.Jitter)
	}
	if g.QoS > 2 {
		ps.add(p+".qos", "must be 0, 1 or 2, got %d", g.QoS)
	}
	if g.Inflight < 1 || g.Inflight > 65535 {
		ps.add(p+".inflight", "must be within 1..65535, got %d", g.Inflight)
	}
	if g.Size.Min < 0 || g.Size.Max < g.Size.Min || g.Size.Max > 256<<20 {
		ps.add(p+".size", "bad range %v (0..256MiB)", g.Size)
	}
	if _, err := parseTemplate(g.ID, "n", "i", "group"); err != nil {
		ps.add(p+".id", "%v", err)
	}
	if _, err := parseTemplate(g.ClientID, "n", "i", "group", "id"); err != nil {
		ps.add(p+".client_id", "%v", err)
	}
	if _, err := parseTemplate(g.Topic, keyFields...); err != nil {
		ps.add(p+".topic", "%v", err)
	}
	g.Behaviour.validate(p+".behaviour", ps)
}

// validate checks a group's misbehaviours; p is its path
// ("groups[1].behaviour").
func (b Behaviour) validate(p string, ps *problems) {
	frac := func(field string, f float64) {
		if f < 0 || f > 1 {
			ps.add(p+"."+field, "must be within 0..1, got %v", f)
		}
	}
	frac("duplicate_ids", b.DuplicateIDs)
	if s := b.Slow; s != nil {
		frac("slow.fraction", s.Fraction)
		if s.Latency < 0 || s.Bandwidth < 0 {
			ps.add(p+".slow", "latency and bandwidth must not be negative")
		}
		if s.Latency == 0 && s.Bandwidth == 0 {
			ps.add(p+".slow", "set latency and/or bandwidth")
		}
	}
	if o := b.Offline; o != nil {
		frac("offline.fraction", o.Fraction)
		if o.For <= 0 {
			ps.add(p+".offline.for", "must be positive")
		}
		if o.Every != 0 && o.Every <= o.For {
			ps.add(p+".offline.every", "must be longer than for (%v), got %v", o.For, o.Every)
		}
		if o.After < 0 || o.Every < 0 {
			ps.add(p+".offline", "durations must not be negative")
		}
	}
	if o := b.Oversize; o != nil {
		frac("oversize.probability", o.Probability)
		if o.Size < 1 {
			ps.add(p+".oversize.size", "must be positive")
		}
		if o.GiveUp < 0 {
			ps.add(p+".oversize.give_up", "must not be negative")
		}
	}
	if u := b.Unrouted; u != nil {
		frac("unrouted.probability", u.Probability)
		if _, err := parseTemplate(u.Topic, keyFields...); err != nil {
			ps.add(p+".unrouted.topic", "%v", err)
		}
	}
}

// validate checks one event of a run of the given duration, whose groups
// are names; p is its path ("events[0]").
func (e Event) validate(p string, duration time.Duration, groups map[string]bool, ps *problems) {
	if e.Kind != "storm" && e.Kind != "outage" {
		ps.add(p+".type", "must be storm or outage, got %q", e.Kind)
	}
	if e.At < 0 || e.Down < 0 || e.Jitter < 0 {
		ps.add(p, "durations must not be negative")
	}
	if e.Fraction <= 0 || e.Fraction > 1 {
		ps.add(p+".fraction", "must be within (0, 1], got %v", e.Fraction)
	}
	if duration > 0 && e.At >= duration {
		ps.add(p+".at", "%v is not before the end of the run (%v)", e.At, duration)
	}
	for _, g := range e.Groups {
		if !groups[g] {
			ps.add(p+".groups", "no group named %q", g)
		}
	}
}

var keyFields = []string{"n", "i", "group", "id", "client_id"}

// tlsScheme reports whether a broker URL's scheme connects with TLS.
func tlsScheme(s string) bool { return s == "ssl" || s == "tls" || s == "mqtts" }

func schemeOK(s string) bool {
	switch s {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
		return true
	}
	return false
}
