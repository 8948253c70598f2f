package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/ingest/auth"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// File is a whole configuration file. Values from Parse, Load and Default
// are complete: defaults are already in place, so callers need not (and
// should not) apply WithDefaults again.
type File struct {
	DataDir    string                  `yaml:"data_dir"`
	GatewayID  string                  `yaml:"gateway_id"` // "" = host name, see ID
	Log        Log                     `yaml:"log"`
	MQTT       ingest.Config           `yaml:"mqtt"`
	Auth       auth.Config             `yaml:"auth"`
	Durability shards.Durability       `yaml:"durability"`
	Encryption shards.EncryptionConfig `yaml:"encryption"`
	API        api.Config              `yaml:"api"`
	Streams    []shards.StreamConfig   `yaml:"streams"`
	Routes     []ingest.Route          `yaml:"routes"`
	Forwarders []forwarder.Config      `yaml:"forwarders"`
	// Uplink is the budget all forwarders share, by priority.
	Uplink forwarder.UplinkConfig `yaml:"uplink"`

	src source
}

// Log is the `log:` section.
type Log struct {
	Level  string `yaml:"level"`  // trace | debug | info | warn | error
	Format string `yaml:"format"` // console | json
}

// source remembers where a File came from so that errors found later (by
// Validate, or by the daemon failing to bind mqtt.listen) can point at the
// line.
type source struct {
	name  string
	lines map[string]int
	path  string // set by Load: the file a reload re-reads
}

// DefaultDataDir is where `weir` without --config keeps its data.
const DefaultDataDir = "./weir-data"

// base is the configuration every file starts from: all sections at their
// defaults and no streams, routes or forwarders.
func base() *File {
	return &File{
		DataDir:    DefaultDataDir,
		Log:        Log{Level: "info", Format: "console"},
		MQTT:       ingest.Config{}.WithDefaults(),
		Auth:       auth.Config{}.WithDefaults(),
		Durability: shards.Durability{CommitDelay: shards.DefaultCommitDelay}.WithDefaults(),
		API:        api.Config{}.WithDefaults(),
	}
}

// Default returns the built-in configuration of `weir` with no arguments:
// MQTT on 127.0.0.1:1883, the API on 127.0.0.1:4588, data in ./weir-data,
// one stream "telemetry" of 4 shards, and every topic routed to it:
// devices/DEVICE/... keyed by DEVICE, so one device's records keep one key
// (and order) whatever client id its connection uses, anything else keyed
// by client id.
func Default() *File {
	f := base()
	f.src.name = "defaults"
	f.Streams = []shards.StreamConfig{shards.StreamConfig{Name: shards.DefaultStreamName, Shards: 4}.WithDefaults()}
	f.Routes = []ingest.Route{
		{Filter: "devices/+/#", Stream: shards.DefaultStreamName, PartitionKey: "{topic.1}"},
		{Filter: "#", Stream: shards.DefaultStreamName, PartitionKey: "{client_id}"},
	}
	return f
}

// Load reads and parses the file at path; errors name it as path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	f, err := Parse(path, data)
	if f != nil {
		f.src.path = path
	}
	return f, err
}

// Path is the file Load read, which a reload (SIGHUP) reads again; "" for
// a File from Parse or Default.
func (f *File) Path() string { return f.src.path }

// Parse decodes and validates a configuration; name is used in error
// messages. On failure it returns Errors holding every problem found
// (unknown keys, wrong types and invalid values together), ordered by
// line.
func Parse(name string, data []byte) (*File, error) {
	d := &decoder{file: name, lines: map[string]int{}, bad: map[string]bool{}}
	root := d.document(data)
	if root == nil {
		return nil, d.errs
	}
	f := base()
	f.src = source{name: name, lines: d.lines}
	d.decode(root, reflect.ValueOf(f).Elem(), "")
	errs := d.errs
	for _, e := range f.check() {
		if !underBad(e.Path, d.bad) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return f, nil
}

// Validate checks a File, for example one built or changed in Go, and
// returns Errors (all problems, by line) or nil.
func (f *File) Validate() error {
	errs := f.check()
	if len(errs) == 0 {
		return nil
	}
	sortErrors(errs)
	return errs
}

// Name is the file name errors use ("defaults" for Default).
func (f *File) Name() string { return f.src.name }

// Line returns the line of the key at path ("streams[0].shards"), or of its
// nearest ancestor written in the file, or 0.
func (f *File) Line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := f.src.lines[p]; ok {
			return l
		}
	}
	return 0
}

// Where returns "FILE:LINE" for path, for errors found after loading (a
// listener that cannot bind, a data dir that cannot be opened).
func (f *File) Where(path string) string {
	if l := f.Line(path); l > 0 {
		return fmt.Sprintf("%s:%d", f.src.name, l)
	}
	return f.src.name
}

// ID is GatewayID, or the host name when it is empty, or "weir" when even
// that is unknown.
func (f *File) ID() string {
	if f.GatewayID != "" {
		return f.GatewayID
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "weir"
}

// MQTTPacketSize is the MQTT maximum packet size to enforce: mqtt.
// max_packet_size, or the largest max_record_size of any stream plus
// headroom.
func (f *File) MQTTPacketSize() conf.ByteSize {
	largest := conf.ByteSize(0)
	for _, s := range f.Streams {
		largest = max(largest, s.MaxRecordSize)
	}
	if largest == 0 {
		largest = conf.MiB
	}
	return f.MQTT.PacketSize(largest)
}

// parentPath strips the last key or index: "a[0].b" -> "a[0]" -> "a".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// underBad reports whether path is, or is inside, a key that failed to
// decode, whose validation error would only repeat the decode error.
func underBad(path string, bad map[string]bool) bool {
	for p := path; p != ""; p = parentPath(p) {
		if bad[p] {
			return true
		}
	}
	return false
}

func sortErrors(errs Errors) {
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
}
