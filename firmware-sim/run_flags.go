package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
	"github.com/weir-gateway/weir/firmware-sim/payload"
	"github.com/weir-gateway/weir/firmware-sim/scenario"
)

// groupFlags cannot be combined with --scenario: they describe the one
// group a flag-only run has.
var groupFlags = []string{"devices", "messages", "rate", "jitter", "qos", "inflight", "topic", "id", "client-id",
	"payload", "size", "mobile", "offline-fraction", "offline-after", "offline-every", "offline-for",
	"slow-fraction", "slow-latency", "slow-bandwidth", "dup-ids", "oversize-prob", "oversize-size",
	"oversize-give-up", "unrouted-prob", "unrouted-topic"}

type runFlags struct {
	broker, username, password string
	ca, cert, key              string
	insecure, tls              bool
	scenario                   string
	g                          fleet.Group
	payload, size              string
	duration, ramp             time.Duration
	seed                       uint64
	ledger, ledgerKey          string
	summary                    string
	progress                   time.Duration
	cleanSession               bool
	keepalive, connectTimeout  time.Duration
	ackTimeout, drain          time.Duration
	buffer, workers            int
	failOnLoss                 bool
	storms                     []time.Duration
	stormJitter, stormDown     time.Duration
	offline                    fleet.Offline
	slow                       fleet.Slow
	slowBandwidth              string
	oversize                   fleet.Oversize
	oversizeSize               string
	unrouted                   fleet.Unrouted
	qos                        int
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.broker, "broker", "tcp://127.0.0.1:1883", "broker `URL`: tcp://, mqtt://, or with TLS tls://, mqtts://, ssl://")
	fs.BoolVar(&f.tls, "tls", false, "connect with TLS although --broker says tcp:// or mqtt://")
	fs.StringVar(&f.username, "username", "", "MQTT username `template`, e.g. {id}: each device logs in as itself ({id}, {client_id}, {n}, {i}, {group})")
	fs.StringVar(&f.password, "password", "", "MQTT password, the same for every device (or env FIRMWARE_SIM_PASSWORD)")
	fs.StringVar(&f.ca, "cafile", "", "PEM `file` of the CA certificates that verify the broker's certificate (default: the system's)")
	fs.StringVar(&f.ca, "ca", "", "the same as --cafile")
	fs.StringVar(&f.cert, "cert", "", "client certificate PEM `file`, or a directory holding <device-id>.crt for each device")
	fs.StringVar(&f.key, "key", "", "client key PEM `file`, or a directory holding <device-id>.key (default: the --cert directory)")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the broker's TLS certificate")
	fs.StringVar(&f.scenario, "scenario", "", "scenario YAML `file` (fleet mix + events); see firmware-sim/scenarios/")

	fs.IntVar(&f.g.Count, "devices", 10, "number of devices")
	fs.IntVar(&f.g.Messages, "messages", 0, "messages per device; 0 = until --duration (or Ctrl-C)")
	fs.Float64Var(&f.g.Rate, "rate", 1, "messages per second per device; 0 = as fast as acks allow")
	fs.Float64Var(&f.g.Jitter, "jitter", 0.1, "spread of each interval, ±fraction (mean rate stays exact); 0 = none")
	fs.IntVar(&f.qos, "qos", 1, "QoS 0, 1 or 2")
	fs.IntVar(&f.g.Inflight, "inflight", 1, "unacknowledged messages a device may have (firmware usually waits for each ack)")
	fs.StringVar(&f.g.Topic, "topic", "devices/{id}/telemetry", "topic `template`")
	fs.StringVar(&f.g.ID, "id", "dev-{n:05}", "device name `template` (written into payloads and the ledger)")
	fs.StringVar(&f.g.ClientID, "client-id", "{id}", "MQTT client id `template`")
	fs.StringVar(&f.payload, "payload", "json", "payload format: json, cbor or binary")
	fs.StringVar(&f.size, "size", "0", "payload size in bytes, e.g. 200, 4KiB, or a range 64KiB-256KiB; 0 = natural")
	fs.BoolVar(&f.g.Mobile, "mobile", false, "mobile assets: add GPS fields that random-walk")

	fs.DurationVar(&f.duration, "duration", 0, "stop after this long (0 = when --messages are sent)")
	fs.DurationVar(&f.ramp, "ramp", 0, "spread the initial connects over this long")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for payloads, jitter and misbehaviour choices")
	fs.StringVar(&f.ledger, "ledger", "", "write one JSON line per acknowledged message to `file`")
	fs.StringVar(&f.ledgerKey, "ledger-key", "{id}", "ledger key `template`: the partition key the gateway's route should derive")
	fs.StringVar(&f.summary, "summary", "text", "summary format: text or json")
	fs.DurationVar(&f.progress, "progress", time.Second, "progress interval (0 = off); in-place on a terminal, plain lines otherwise")
	fs.BoolVar(&f.cleanSession, "clean-session", true, "MQTT clean session")
	fs.DurationVar(&f.keepalive, "keepalive", 30*time.Second, "MQTT keepalive")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 10*time.Second, "TCP+TLS+CONNECT timeout")
	fs.DurationVar(&f.ackTimeout, "ack-timeout", 0, "give up on a message not acked within this (0 = wait forever, like firmware)")
	fs.DurationVar(&f.drain, "drain", 5*time.Second, "at the end, keep delivering buffered messages and waiting for acks this long")
	fs.IntVar(&f.buffer, "buffer", 1000, "messages a device buffers while offline or backlogged before dropping its oldest")
	fs.IntVar(&f.workers, "workers", 0, "publishing goroutines shared by all devices (0 = 4×CPUs, min 8)")
	fs.BoolVar(&f.failOnLoss, "fail-on-loss", false, "exit 1 if any message failed")

	fs.Func("storm", "reconnect storm at `time` since start (repeatable): every device drops and reconnects", func(s string) error {
		d, err := time.ParseDuration(s)
		f.storms = append(f.storms, d)
		return err
	})
	fs.DurationVar(&f.stormJitter, "storm-jitter", 0, "storms: each device returns after a uniform 0..jitter delay (0 = all at once)")
	fs.DurationVar(&f.stormDown, "storm-down", 0, "storms: minimum time devices stay offline")
	fs.Float64Var(&f.offline.Fraction, "offline-fraction", 0, "fraction of devices that go offline periodically and resend their buffer")
	fs.DurationVar(&f.offline.After, "offline-after", 10*time.Second, "first offline window starts after this")
	fs.DurationVar(&f.offline.Every, "offline-every", 0, "repeat offline windows this often (0 = once)")
	fs.DurationVar(&f.offline.For, "offline-for", 10*time.Second, "length of an offline window")
	fs.Float64Var(&f.slow.Fraction, "slow-fraction", 0, "fraction of devices behind a slow link")
	fs.DurationVar(&f.slow.Latency, "slow-latency", 200*time.Millisecond, "slow link: delay per write")
	fs.StringVar(&f.slowBandwidth, "slow-bandwidth", "0", "slow link: bytes per second, e.g. 2KiB (0 = unlimited)")
	fs.Float64Var(&f.g.Behaviour.DuplicateIDs, "dup-ids", 0, "fraction of devices reusing the previous device's client id")
	fs.Float64Var(&f.oversize.Probability, "oversize-prob", 0, "probability that a message is an oversize probe")
	fs.StringVar(&f.oversizeSize, "oversize-size", "2MiB", "size of oversize probes")
	fs.DurationVar(&f.oversize.GiveUp, "oversize-give-up", 5*time.Second, "give up on an unacked oversize probe after this")
	fs.Float64Var(&f.unrouted.Probability, "unrouted-prob", 0, "probability that a message goes to an unrouted topic")
	fs.StringVar(&f.unrouted.Topic, "unrouted-topic", "unrouted/{id}", "topic `template` for unrouted probes")
}

// config turns flags (and the scenario, if any) into a fleet.Config.
func (f *runFlags) config(set map[string]bool) (fleet.Config, error) {
	var cfg fleet.Config
	if f.scenario != "" {
		for _, name := range groupFlags {
			if set[name] {
				return cfg, fmt.Errorf("--%s cannot be combined with --scenario: edit the scenario's groups instead", name)
			}
		}
		sc, err := scenario.Load(f.scenario)
		if err != nil {
			return cfg, err
		}
		cfg = sc.Config
	} else {
		g := f.g
		g.Name = "dev"
		if f.qos < 0 || f.qos > 2 {
			return cfg, fmt.Errorf("--qos must be 0, 1 or 2")
		}
		g.QoS = byte(f.qos)
		if set["jitter"] && g.Jitter == 0 {
			g.Jitter = -1 // explicitly none
		}
		var err error
		if g.Payload, err = payload.ParseFormat(f.payload); err != nil {
			return cfg, fmt.Errorf("--payload: %w", err)
		}
		if g.Size, err = fleet.ParseSizeRange(f.size); err != nil {
			return cfg, fmt.Errorf("--size: %w", err)
		}
		if f.offline.Fraction > 0 {
			o := f.offline
			g.Behaviour.Offline = &o
		}
		if f.slow.Fraction > 0 {
			s := f.slow
			if s.Bandwidth, err = fleet.ParseSize(f.slowBandwidth); err != nil {
				return cfg, fmt.Errorf("--slow-bandwidth: %w", err)
			}
			g.Behaviour.Slow = &s
		}
		if f.oversize.Probability > 0 {
			o := f.oversize
			if o.Size, err = fleet.ParseSize(f.oversizeSize); err != nil {
				return cfg, fmt.Errorf("--oversize-size: %w", err)
			}
			g.Behaviour.Oversize = &o
		}
		if f.unrouted.Probability > 0 {
			u := f.unrouted
			g.Behaviour.Unrouted = &u
		}
		cfg.Groups = []fleet.Group{g}
		cfg.CleanSession = true
	}
	cfg.Broker = f.broker
	cfg.Username = f.username
	cfg.Password = f.password
	if cfg.Password == "" {
		cfg.Password = os.Getenv("FIRMWARE_SIM_PASSWORD")
	}
	// Flags given explicitly override the scenario; without a scenario
	// they are simply the settings.
	over := func(name string) bool { return f.scenario == "" || set[name] }
	if over("duration") {
		cfg.Duration = f.duration
	}
	if over("ramp") {
		cfg.Ramp = f.ramp
	}
	if over("seed") {
		cfg.Seed = f.seed
	}
	if over("ledger-key") {
		cfg.LedgerKey = f.ledgerKey
	}
	if over("clean-session") {
		cfg.CleanSession = f.cleanSession
	}
	if over("keepalive") {
		cfg.KeepAlive = f.keepalive
	}
	if over("ack-timeout") {
		cfg.AckTimeout = f.ackTimeout
	}
	if over("drain") {
		cfg.Drain = f.drain
	}
	if over("buffer") {
		cfg.Buffer = f.buffer
	}
	cfg.ConnectTimeout = f.connectTimeout
	cfg.Workers = f.workers
	for _, at := range f.storms {
		cfg.Events = append(cfg.Events, fleet.Event{At: at, Kind: "storm", Jitter: f.stormJitter, Down: f.stormDown})
	}
	if err := f.tlsConfig(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// tlsConfig sets the broker URL's scheme for --tls and the TLS settings
// of --cafile, --cert, --key and --insecure.
func (f *runFlags) tlsConfig(cfg *fleet.Config) error {
	u, err := url.Parse(cfg.Broker)
	if err != nil {
		return nil // Validate names the bad URL
	}
	if f.tls {
		switch u.Scheme {
		case "tcp":
			u.Scheme = "tls"
		case "mqtt":
			u.Scheme = "mqtts"
		}
		cfg.Broker = u.String()
	}
	if f.ca == "" && f.cert == "" && f.key == "" && !f.insecure {
		return nil
	}
	if u.Scheme == "tcp" || u.Scheme == "mqtt" {
		return fmt.Errorf("--cafile, --cert, --key and --insecure need TLS: use a tls:// or mqtts:// --broker, or --tls")
	}
	c, err := f.tlsFiles()
	if err != nil {
		return err
	}
	cfg.TLS = c
	if fi, err := os.Stat(f.cert); err == nil && fi.IsDir() {
		cfg.ClientCertDir, cfg.ClientKeyDir = f.cert, f.key
		return nil
	}
	if f.cert != "" || f.key != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return fmt.Errorf("--cert/--key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return nil
}

func (f *runFlags) tlsFiles() (*tls.Config, error) {
	c := &tls.Config{InsecureSkipVerify: f.insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in flag for test brokers
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cafile: no certificates in %s", f.ca)
		}
		c.RootCAs = pool
	}
	return c, nil
}
