package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// ErrInvalid wraps every parse and validation error.
var ErrInvalid = errors.New("scenario: invalid")

// Scenario is a loaded scenario file.
type Scenario struct {
	Name        string
	Description string
	// Config has everything but the broker and credentials.
	Config fleet.Config
}

// Duration is a Go duration string; bare numbers are refused because
// "30" would otherwise silently mean 30 nanoseconds.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write e.g. 30s, 1m30s, 250ms)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Size is a byte count ("200", "4KiB") or a range ("64KiB-256KiB").
type Size fleet.SizeRange

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	r, err := fleet.ParseSizeRange(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*s = Size(r)
	return nil
}

// Bytes is a single byte count ("2KiB").
type Bytes int

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	v, err := fleet.ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*b = Bytes(v)
	return nil
}

type file struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Duration    Duration `yaml:"duration"`
	Ramp        Duration `yaml:"ramp"`
	Seed        uint64   `yaml:"seed"`
	Settings    settings `yaml:"settings"`
	Groups      []groupY `yaml:"groups"`
	Events      []eventY `yaml:"events"`
}

type settings struct {
	CleanSession *bool    `yaml:"clean_session"`
	KeepAlive    Duration `yaml:"keepalive"`
	AckTimeout   Duration `yaml:"ack_timeout"`
	Buffer       int      `yaml:"buffer"`
	Drain        Duration `yaml:"drain"`
	LedgerKey    string   `yaml:"ledger_key"`
}

type groupY struct {
	Name      string     `yaml:"name"`
	Count     int        `yaml:"count"`
	ID        string     `yaml:"id"`
	ClientID  string     `yaml:"client_id"`
	Topic     string     `yaml:"topic"`
	Messages  int        `yaml:"messages"`
	Rate      float64    `yaml:"rate"`
	Jitter    *float64   `yaml:"jitter"`
	QoS       *int       `yaml:"qos"`
	Inflight  int        `yaml:"inflight"`
	Payload   string     `yaml:"payload"`
	Size      Size       `yaml:"size"`
	Mobile    bool       `yaml:"mobile"`
	Behaviour behaviourY `yaml:"behaviour"`
}

type behaviourY struct {
	Slow *struct {
		Fraction  float64  `yaml:"fraction"`
		Latency   Duration `yaml:"latency"`
		Bandwidth Bytes    `yaml:"bandwidth"`
	} `yaml:"slow"`
	Offline *struct {
		Fraction float64  `yaml:"fraction"`
		After    Duration `yaml:"after"`
		Every    Duration `yaml:"every"`
		For      Duration `yaml:"for"`
	} `yaml:"offline"`
	DuplicateIDs float64 `yaml:"duplicate_ids"`
	Oversize     *struct {
		Probability float64  `yaml:"probability"`
		Size        Bytes    `yaml:"size"`
		GiveUp      Duration `yaml:"give_up"`
	} `yaml:"oversize"`
	Unrouted *struct {
		Probability float64 `yaml:"probability"`
		Topic       string  `yaml:"topic"`
	} `yaml:"unrouted"`
}

type eventY struct {
	At       Duration `yaml:"at"`
	Type     string   `yaml:"type"`
	Down     Duration `yaml:"down"`
	Jitter   Duration `yaml:"jitter"`
	Fraction float64  `yaml:"fraction"`
	Groups   []string `yaml:"groups"`
}

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Parse(path, b)
}

// Parse validates scenario bytes; name prefixes error messages.
func Parse(name string, src []byte) (*Scenario, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: empty file", ErrInvalid, name)
		}
		return nil, fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(yamlErrors(name, err), "\n  "))
	}
	var root yaml.Node
	_ = yaml.Unmarshal(src, &root)

	var errs []string
	cfg, convErrs := f.config()
	for _, e := range convErrs {
		errs = append(errs, locate(name, &root, e))
	}
	// Validate everything the file controls; the broker comes from the CLI.
	check := cfg.Defaults()
	check.Broker = "tcp://placeholder:1883"
	for _, e := range check.Validate() {
		errs = append(errs, locate(name, &root, e.Error()))
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return lineOf(errs[i]) < lineOf(errs[j]) })
		return nil, fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(errs, "\n  "))
	}
	return &Scenario{Name: f.Name, Description: f.Description, Config: cfg}, nil
}

var (
	reLine     = regexp.MustCompile(`^\s*line (\d+): (.*)$`)
	reNotFound = regexp.MustCompile(`field (\S+) not found in type \S+`)
	reType     = regexp.MustCompile(`cannot unmarshal !!(\w+) ` + "`" + `([^` + "`" + `]*)` + "`" + ` into (\S+)`)
)

// lineOf extracts N from "file:N: msg" (0 if absent) for sorting.
func lineOf(msg string) int {
	_, rest, _ := strings.Cut(msg, ":")
	n, _ := strconv.Atoi(strings.SplitN(rest, ":", 2)[0])
	return n
}

// yamlErrors turns yaml.v3's messages into "file:line: message" lines.
func yamlErrors(name string, err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "yaml: ")
		if l == "" || l == "unmarshal errors:" {
			continue
		}
		l = reNotFound.ReplaceAllString(l, "unknown key $1")
		l = reType.ReplaceAllString(l, "$1 value \"$2\" where a $3 is expected")
		if m := reLine.FindStringSubmatch(l); m != nil {
			out = append(out, name+":"+m[1]+": "+m[2])
			continue
		}
		out = append(out, name+": "+l)
	}
	return out
}

func (f *file) config() (fleet.Config, []string) {
	var errs []string
	cfg := fleet.Config{
		Duration:     time.Duration(f.Duration),
		Ramp:         time.Duration(f.Ramp),
		Seed:         f.Seed,
		CleanSession: true,
		KeepAlive:    time.Duration(f.Settings.KeepAlive),
		AckTimeout:   time.Duration(f.Settings.AckTimeout),
		Buffer:       f.Settings.Buffer,
		Drain:        time.Duration(f.Settings.Drain),
		LedgerKey:    f.Settings.LedgerKey,
	}
	if f.Settings.CleanSession != nil {
		cfg.CleanSession = *f.Settings.CleanSession
	}
	if len(f.Groups) == 0 {
		errs = append(errs, "groups: at least one group is needed")
	}
	for i, g := range f.Groups {
		p := "groups[" + strconv.Itoa(i) + "]"
		pf, err := payload.ParseFormat(g.Payload)
		if err != nil {
			errs = append(errs, p+".payload: "+err.Error())
		}
		qos := 1
		if g.QoS != nil {
			qos = *g.QoS
		}
		if qos < 0 || qos > 2 {
			errs = append(errs, fmt.Sprintf("%s.qos: must be 0, 1 or 2, got %d", p, qos))
			qos = 1
		}
		jitter := 0.0 // fleet default
		if g.Jitter != nil {
			jitter = *g.Jitter
			if jitter == 0 {
				jitter = -1 // explicit 0: none (fleet reads 0 as "default")
			} else if jitter < 0 {
				errs = append(errs, fmt.Sprintf("%s.jitter: must be within 0..1, got %v", p, jitter))
			}
		}
		fg := fleet.Group{
			Name: g.Name, Count: g.Count, ID: g.ID, ClientID: g.ClientID, Topic: g.Topic,
			Messages: g.Messages, Rate: g.Rate, Jitter: jitter, QoS: byte(qos),
			Inflight: g.Inflight, Payload: pf, Size: fleet.SizeRange(g.Size), Mobile: g.Mobile,
		}
		b := g.Behaviour
		fg.Behaviour.DuplicateIDs = b.DuplicateIDs
		if s := b.Slow; s != nil {
			fg.Behaviour.Slow = &fleet.Slow{Fraction: s.Fraction, Latency: time.Duration(s.Latency), Bandwidth: int(s.Bandwidth)}
		}
		if o := b.Offline; o != nil {
			fg.Behaviour.Offline = &fleet.Offline{Fraction: o.Fraction, After: time.Duration(o.After), Every: time.Duration(o.Every), For: time.Duration(o.For)}
		}
		if o := b.Oversize; o != nil {
			fg.Behaviour.Oversize = &fleet.Oversize{Probability: o.Probability, Size: int(o.Size), GiveUp: time.Duration(o.GiveUp)}
		}
		if u := b.Unrouted; u != nil {
			fg.Behaviour.Unrouted = &fleet.Unrouted{Probability: u.Probability, Topic: u.Topic}
		}
		cfg.Groups = append(cfg.Groups, fg)
	}
	for _, e := range f.Events {
		cfg.Events = append(cfg.Events, fleet.Event{
			At: time.Duration(e.At), Kind: e.Type, Down: time.Duration(e.Down),
			Jitter: time.Duration(e.Jitter), Fraction: e.Fraction, Groups: e.Groups,
		})
	}
	return cfg, errs
}
