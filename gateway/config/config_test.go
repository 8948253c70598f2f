package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/ingest"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// issue2Minimum is the configuration issue 2 says must work exactly as
// written.
const issue2Minimum = `data_dir: /var/lib/weir
mqtt:
  listen: 127.0.0.1:1883
durability:
  fsync: always          # always: PUBACK only after fsync (default) | interval
  interval: 10ms         # for fsync: interval
streams:
  - name: telemetry
    shards: 4
routes:
  - filter: devices/+/telemetry      # MQTT filter; first matching route wins
    stream: telemetry
    partition_key: "{topic.1}"       # {topic.N} 0-based topic level, {client_id}, {username}, {payload.PATH} (JSON field); literal text allowed
`

func TestIssue2Minimum(t *testing.T) {
	for _, tc := range []struct {
		name string
		load func() (*File, error)
	}{
		{"inline", func() (*File, error) { return Parse("weir.yaml", []byte(issue2Minimum)) }},
		{"configs_minimal_yaml", func() (*File, error) { return Load(filepath.Join("..", "..", "configs", "minimal.yaml")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.load()
			if err != nil {
				t.Fatalf("minimum config rejected:\n%v", err)
			}
			if f.DataDir != "/var/lib/weir" || f.MQTT.Listen != "127.0.0.1:1883" || f.Durability.Fsync != "always" ||
				f.Durability.Interval.D() != 10*time.Millisecond {
				t.Fatalf("decoded %+v", f)
			}
			wantStream := shards.StreamConfig{Name: "telemetry", Shards: 4}.WithDefaults()
			if len(f.Streams) != 1 || f.Streams[0] != wantStream {
				t.Fatalf("streams = %+v, want [%+v]", f.Streams, wantStream)
			}
			if len(f.Routes) != 1 || f.Routes[0].Filter != "devices/+/telemetry" || f.Routes[0].Stream != "telemetry" || f.Routes[0].PartitionKey != "{topic.1}" {
				t.Fatalf("routes = %+v", f.Routes)
			}
			if f.API.Listen != "127.0.0.1:4588" || f.MQTT.ConnectTimeout.D() != 10*time.Second || len(f.Forwarders) != 0 {
				t.Fatalf("section defaults not applied: %+v", f)
			}
			if err := f.Validate(); err != nil {
				t.Fatalf("Validate after Parse: %v", err)
			}
		})
	}
	if b, err := readFile(filepath.Join("..", "..", "configs", "minimal.yaml")); err != nil || b != issue2Minimum {
		t.Fatalf("configs/minimal.yaml differs from the issue-2 minimum (err %v)", err)
	}
}

func TestDefault(t *testing.T) {
	f := Default()
	if err := f.Validate(); err != nil {
		t.Fatalf("Default() invalid:\n%v", err)
	}
	if f.DataDir != "./weir-data" || f.MQTT.Listen != "127.0.0.1:1883" || f.API.Listen != "127.0.0.1:4588" {
		t.Fatalf("Default() = %+v", f)
	}
	if len(f.Streams) != 1 || f.Streams[0].Name != "telemetry" || f.Streams[0].Shards != 4 {
		t.Fatalf("Default streams = %+v", f.Streams)
	}
	wantRoutes := []ingest.Route{
		{Filter: "devices/+/#", Stream: "telemetry", PartitionKey: "{topic.1}"},
		{Filter: "#", Stream: "telemetry", PartitionKey: "{client_id}"},
	}
	if !reflect.DeepEqual(f.Routes, wantRoutes) {
		t.Fatalf("Default routes = %+v, want %+v", f.Routes, wantRoutes)
	}
	if sh := ingest.ShadowedRoutes(f.Routes); len(sh) != 0 {
		t.Fatalf("Default routes shadow each other: %+v", sh)
	}
	if f.MQTTPacketSize() != conf.MiB+64*conf.KiB {
		t.Fatalf("MQTTPacketSize = %v", f.MQTTPacketSize())
	}
	f.Streams[0].Shards = 9
	if Default().Streams[0].Shards != 4 {
		t.Fatal("Default shares state between calls")
	}
}

func TestExampleFile(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "weir.example.yaml")
	f, err := Load(path)
	if err != nil {
		t.Fatalf("example rejected:\n%v", err)
	}
	if len(f.Streams) != 1 || len(f.Routes) != 1 || len(f.Forwarders) != 1 {
		t.Fatalf("example lists: %+v", f)
	}
	// Every key of the schema is written (and so documented) in the example,
	// and each has the value the defaults give, so the comments cannot
	// drift from the code.
	written := map[string]bool{}
	for p := range f.src.lines {
		written[regexp.MustCompile(`\[\d+\]`).ReplaceAllString(p, "[]")] = true
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range schemaPaths(reflect.TypeFor[File](), "") {
		// A list that is empty by default (mqtt.listeners) documents its
		// elements' keys in a commented-out example entry.
		inComment := func() bool {
			_, last, _ := strings.Cut(p, "[]")
			last = last[strings.LastIndexByte(last, '.')+1:]
			return strings.Contains(p, "[]") && regexp.MustCompile(`(?m)^\s*#\s*(- )?`+regexp.QuoteMeta(last)+`:`).Match(raw)
		}
		if !written[p] && !inComment() {
			t.Errorf("configs/weir.example.yaml does not document %s", p)
		}
	}
	d := Default()
	if len(f.MQTT.Listeners) == 0 {
		f.MQTT.Listeners = nil // the example's `listeners: []` is the default
	}
	if f.Streams[0] != d.Streams[0] || !reflect.DeepEqual(f.MQTT, d.MQTT) || f.Durability != d.Durability || !reflect.DeepEqual(f.API, d.API) || f.Log != d.Log || f.Auth != d.Auth {
		t.Errorf("example values differ from the defaults:\nexample %+v\ndefault %+v", f, d)
	}
	if fw := f.Forwarders[0]; !reflect.DeepEqual(fw, fw.WithDefaults()) {
		t.Errorf("example forwarder differs from its defaults: %+v", fw)
	}
}

// schemaPaths lists every key path of t, with "[]" for list elements.
func schemaPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		p := conf.Join(prefix, name)
		out = append(out, p)
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, schemaPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, schemaPaths(ft.Elem(), p+"[]")...)
		}
	}
	return out
}

const validBase = `data_dir: /tmp/w
streams:
  - name: telemetry
routes:
  - filter: "#"
    stream: telemetry
`

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown_top_level_key",
			yaml: "data_dir: x\nstrams: []\n",
			want: []string{`weir.yaml:2: strams: unknown key "strams", did you mean "streams"?`},
		},
		{
			name: "unknown_nested_key",
			yaml: validBase + "    shardz: 3\n",
			want: []string{`weir.yaml:7: routes[0].shardz: unknown key "shardz"; valid keys here: filter, stream, partition_key`},
		},
		{
			name: "unknown_key_in_stream",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    shardz: 3\n",
			want: []string{`weir.yaml:4: streams[0].shardz: unknown key "shardz", did you mean "shards"?`},
		},
		{
			name: "unknown_key_in_flow_mapping",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    rate: {records_per_sec: 1, on_limt: reject}\n",
			want: []string{`weir.yaml:4: streams[0].rate.on_limt: unknown key "on_limt", did you mean "on_limit"?`},
		},
		{
			name: "several_errors_together",
			yaml: "data_dir: \"\"\nlog: {level: loud}\nstreams:\n  - name: a\n    shards: 0\n    retention: 0s\nroutes:\n  - filter: a/#/b\n    stream: a\n",
			want: []string{
				`weir.yaml:1: data_dir: must not be empty; it is where the streams are stored, e.g. /var/lib/weir`,
				`weir.yaml:2: log.level: must be one of trace, debug, info, warn, error, got "loud"`,
				`weir.yaml:5: streams[0].shards: must be 1..1024, got 0`,
				`weir.yaml:6: streams[0].retention: must be 1s..8760h, got 0s`,
				`weir.yaml:8: routes[0].filter: '#' must be a whole level and the last one (e.g. devices/#), in "a/#/b"`,
			},
		},
		{
			name: "route_unknown_stream_names_both_keys",
			yaml: validBase + "  - filter: b/#\n    stream: x\n",
			want: []string{`weir.yaml:8: routes[1].stream: unknown stream "x" (streams[].name: "telemetry")`},
		},
		{
			name: "forwarder_unknown_stream_and_region",
			yaml: validBase + "forwarders:\n  - stream: nope\n    target_stream: up\n",
			want: []string{
				`weir.yaml:8: forwarders[0].region: must be set when endpoint is empty (the endpoint is derived from the region), e.g. eu-west-1`,
				`weir.yaml:8: forwarders[0].stream: unknown stream "nope" (streams[].name: "telemetry")`,
			},
		},
		{
			name: "max_wait_needs_backpressure",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    rate:\n      on_limit: backpressure\n      max_wait: 0s\n",
			want: []string{`weir.yaml:6: streams[0].rate.max_wait: must be > 0 when on_limit is backpressure`},
		},
		{
			name: "stream_mode_spelled_as_in_the_api",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    mode: ON_DEMAND\n",
			want: []string{`weir.yaml:4: streams[0].mode: must be one of provisioned, on_demand, got "ON_DEMAND"`},
		},
		{
			name: "on_demand_bounds",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    shards: 8\n    mode: on_demand\n    on_demand:\n      merge_at: 0.9\n      max_shards: 4\n",
			want: []string{
				`weir.yaml:7: streams[0].on_demand.merge_at: (0.9) must be below split_at (0.8), or a merged shard would be split again at once`,
				`weir.yaml:8: streams[0].on_demand.max_shards: (4) must be at least shards (8), the floor the autoscaler never goes below`,
			},
		},
		{
			name: "record_size_vs_segment_size",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    segment_size: 4KiB\n",
			want: []string{`weir.yaml:3: streams[0].max_record_size: (1MiB) must leave 1KiB of headroom in segment_size (4KiB): raise segment_size to at least 1025KiB or lower max_record_size`},
		},
		{
			name: "fsync_interval_zero",
			yaml: "data_dir: x\ndurability:\n  fsync: interval\n  interval: 0\n",
			want: []string{`weir.yaml:4: durability.interval: must be > 0 when fsync is interval, got 0s`},
		},
		{
			name: "bad_duration",
			yaml: "data_dir: x\nmqtt:\n  connect_timeout: 10\n",
			want: []string{`weir.yaml:3: mqtt.connect_timeout: invalid duration "10": a duration needs a unit, e.g. 10s or 10ms`},
		},
		{
			name: "bad_duration_days",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    retention: 7d\n",
			want: []string{`weir.yaml:4: streams[0].retention: invalid duration "7d": there is no day unit; write 168h`},
		},
		{
			name: "bad_size",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    segment_size: 16MiBs\n",
			want: []string{`weir.yaml:4: streams[0].segment_size: invalid size "16MiBs": unknown unit "MiBs" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`},
		},
		{
			name: "type_error_int",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    shards: abc\n",
			want: []string{`weir.yaml:4: streams[0].shards: must be an integer, got "abc"`},
		},
		{
			name: "mqtt_listener_not_loopback",
			yaml: "data_dir: x\nmqtt:\n  listeners:\n    - listen: 0.0.0.0:1884\n",
			want: []string{`weir.yaml:4: mqtt.listeners[0].listen: 0.0.0.0:1884 is not loopback and clients are not authenticated on it; configure auth.password_file, client certificates (tls.require_client_cert: true), or set mqtt.allow_anonymous: true to accept anonymous clients from the network (as in Mosquitto 2.0, anonymous clients are accepted only on loopback unless allowed explicitly)`},
		},
		{
			name: "mqtt_listener_tls_file_missing",
			yaml: "data_dir: x\nmqtt:\n  listeners:\n    - listen: 127.0.0.1:8883\n      tls:\n        cert_file: /nonexistent/a.crt\n        key_file: /nonexistent/a.key\n",
			want: []string{`weir.yaml:6: mqtt.listeners[0].tls.cert_file: open /nonexistent/a.crt: no such file or directory`},
		},
		{
			name: "type_error_bool",
			yaml: "data_dir: x\nmqtt:\n  allow_anonymous: yes\n",
			want: []string{`weir.yaml:3: mqtt.allow_anonymous: must be true or false, got "yes"`},
		},
		{
			name: "type_error_section",
			yaml: "data_dir: x\nmqtt: 127.0.0.1:1883\n",
			want: []string{`weir.yaml:2: mqtt: must be a mapping of keys (key: value), got "127.0.0.1:1883"`},
		},
		{
			name: "type_error_list",
			yaml: "data_dir: x\nstreams:\n  name: a\n",
			want: []string{`weir.yaml:3: streams: must be a list (entries starting with -), got a mapping`},
		},
		{
			name: "client_id_binding_without_identities",
			yaml: "data_dir: x\nauth:\n  client_id_must_match: username\n",
			want: []string{`weir.yaml:3: auth.client_id_must_match: username needs auth.password_file: without it no user name is ever verified`},
		},
		{
			name: "client_id_binding_to_identity_without_identities",
			yaml: "data_dir: x\nauth:\n  client_id_must_match: identity\n",
			want: []string{`weir.yaml:3: auth.client_id_must_match: identity needs auth.password_file or a mqtt.listeners[].tls.client_ca_file: without them no client has an identity`},
		},
		{
			name: "auth_bad_value",
			yaml: "data_dir: x\nauth:\n  client_id_must_match: always\n",
			want: []string{`weir.yaml:3: auth.client_id_must_match: must be one of off, username, identity, got "always"`},
		},
		{
			name: "mqtt_not_loopback",
			yaml: "data_dir: x\nmqtt:\n  listen: 0.0.0.0:1883\n",
			want: []string{`weir.yaml:3: mqtt.listen: 0.0.0.0:1883 is not loopback and clients are not authenticated on it; configure auth.password_file, client certificates (tls.require_client_cert: true), or set mqtt.allow_anonymous: true to accept anonymous clients from the network (as in Mosquitto 2.0, anonymous clients are accepted only on loopback unless allowed explicitly)`},
		},
		{
			name: "api_not_loopback",
			yaml: "data_dir: x\napi:\n  listen: :4588\n",
			want: []string{`weir.yaml:3: api.listen: :4588 is not loopback and api.credentials_file is not set; set api.credentials_file to require signed requests, api.allow_anonymous: true to serve anyone on the network, or listen on 127.0.0.1`},
		},
		{
			name: "bad_listen",
			yaml: "data_dir: x\nmqtt:\n  listen: 1883\n",
			want: []string{`weir.yaml:3: mqtt.listen: invalid listen address "1883": must be host:port, e.g. 127.0.0.1:1883 or [::1]:1883`},
		},
		{
			name: "duplicate_stream",
			yaml: "data_dir: x\nstreams:\n  - name: a\n  - name: a\n",
			want: []string{`weir.yaml:4: streams[1].name: duplicate stream "a" (also streams[0].name)`},
		},
		{
			name: "duplicate_key",
			yaml: "data_dir: x\ndata_dir: y\n",
			want: []string{`weir.yaml:2: data_dir: duplicate key (first at line 1)`},
		},
		{
			name: "duplicate_route_filter",
			yaml: validBase + "  - filter: \"#\"\n    stream: telemetry\n",
			want: []string{`weir.yaml:7: routes[1].filter: "#" is already routed by routes[0].filter; the first matching route wins, so this one would never be used`},
		},
		{
			name: "bad_partition_key",
			yaml: validBase + "    partition_key: \"{device}\"\n",
			want: []string{`weir.yaml:7: routes[0].partition_key: unknown placeholder {device}; use {topic.N}, {client_id}, {username}, {identity} or {payload.PATH}`},
		},
		{
			name: "duplicate_forwarder",
			yaml: validBase + "forwarders:\n  - {stream: telemetry, target_stream: up, region: r}\n  - {stream: telemetry, target_stream: up, region: r2}\n",
			want: []string{`weir.yaml:9: forwarders[1].target_stream: stream "telemetry" is already forwarded to "up" by forwarders[0]; the two would share one checkpoint (forwarder:up)`},
		},
		{
			name: "sink_checkpoint_clash",
			yaml: validBase + "forwarders:\n  - {stream: telemetry, target_stream: up, region: r}\n  - stream: telemetry\n    kind: http\n    name: up\n    http: {url: \"https://h/x\"}\n",
			want: []string{`weir.yaml:11: forwarders[1].name: stream "telemetry" already has a forwarder named "up" (forwarders[0]); the two would share one checkpoint (forwarder:up): set a distinct name`},
		},
		{
			name: "sink_errors",
			yaml: validBase + "forwarders:\n  - stream: telemetry\n    kind: http\n    name: hook\n    region: eu-west-1\n    http:\n      url: ftp://x\n      headers:\n        - {name: Authorization, value: \"Bearer s3cret\"}\n    mqtt:\n      broker: tcp://x:1883\nuplink:\n  max_bytes_per_sec: -1\n",
			want: []string{
				`weir.yaml:11: forwarders[0].region: applies to kind kinesis only, this forwarder is kind http`,
				`weir.yaml:13: forwarders[0].http.url: "ftp://x" must be an http:// or https:// URL`,
				`weir.yaml:15: forwarders[0].http.headers[0].value: Authorization carries credentials: read it from env: or file:, never inline`,
				`weir.yaml:16: forwarders[0].mqtt: is set, but this forwarder is kind http: set kind: mqtt or remove the section`,
				`weir.yaml:19: uplink.max_bytes_per_sec: invalid size "-1": must not be negative`,
			},
		},
		{
			name: "mqtt_sink_errors",
			yaml: validBase + "forwarders:\n  - stream: telemetry\n    kind: mqtt\n    mqtt:\n      broker: ssl://iot.example.com\n      topic: \"up/{device}/#\"\n      password: {env: PW}\n    filter:\n      topics: [\"a/#/b\"]\n",
			want: []string{
				`weir.yaml:8: forwarders[0].name: must be set for kind mqtt: it names the checkpoint (forwarder:<name>), e.g. name: mqtt-archive`,
				`weir.yaml:11: forwarders[0].mqtt.broker: "ssl://iot.example.com" needs a port (1883 for tcp, 8883 for ssl)`,
				`weir.yaml:12: forwarders[0].mqtt.topic: "up/{device}/#" has an unknown placeholder; use {topic} {stream} {key} {client_id} {shard}`,
				`weir.yaml:13: forwarders[0].mqtt.password: needs username`,
				`weir.yaml:15: forwarders[0].filter.topics[0]: "a/#/b": # must be alone in the last level`,
			},
		},
		{
			name: "empty_file",
			yaml: "",
			want: []string{`weir.yaml: empty configuration: the file has no keys (run weir without --config for the built-in defaults)`},
		},
		{
			name: "comments_only",
			yaml: "# nothing here\n",
			want: []string{`weir.yaml: empty configuration: the file has no keys (run weir without --config for the built-in defaults)`},
		},
		{
			name: "syntax_error",
			yaml: "data_dir: x\nmqtt:\n  listen: a\n listen: b\n",
			// yaml.v3 gives the line only inside its text, passed on whole.
			want: []string{`weir.yaml: not valid YAML: yaml: line 3: did not find expected key`},
		},
		{
			name: "two_documents",
			yaml: "data_dir: x\n---\ndata_dir: y\n",
			want: []string{`weir.yaml:2: a second YAML document (---) is not allowed; put everything in one`},
		},
		{
			name: "top_level_list",
			yaml: "- a\n",
			want: []string{`weir.yaml:1: the top level must be a mapping of keys such as data_dir and streams, got a list`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("weir.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			if f != nil {
				t.Fatal("non-nil File with an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want Errors", err)
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestAccepted(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, f *File)
	}{
		{
			name: "non_loopback_with_allow_anonymous",
			yaml: "data_dir: x\nmqtt: {listen: 0.0.0.0:1883, allow_anonymous: true}\napi: {listen: '[::]:4588', allow_anonymous: true}\n",
			check: func(t *testing.T, f *File) {
				if !f.MQTT.AllowAnonymous || f.API.Listen != "[::]:4588" {
					t.Fatalf("%+v", f)
				}
			},
		},
		{
			// A password file is authentication enough for the network
			// (the file is read when the gateway starts, not here).
			name: "non_loopback_with_password_file",
			yaml: "data_dir: x\nmqtt: {listen: 0.0.0.0:1883}\nauth: {password_file: /etc/weir/passwd, client_id_must_match: username}\n",
			check: func(t *testing.T, f *File) {
				if f.Auth.PasswordFile != "/etc/weir/passwd" || f.Auth.ClientIDMustMatch != "username" || f.Auth.ACLFile != "" {
					t.Fatalf("auth = %+v", f.Auth)
				}
			},
		},
		{
			name: "on_demand_stream",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    shards: 2\n    mode: on_demand\n    on_demand: {split_after: 10s, max_shards: 8}\n",
			check: func(t *testing.T, f *File) {
				s := f.Streams[0]
				if s.Mode != "on_demand" || s.OnDemand.SplitAfter.D() != 10*time.Second || s.OnDemand.MaxShards != 8 || s.OnDemand.SplitAt != 0.8 {
					t.Fatalf("stream = %+v", s)
				}
			},
		},
		{
			name: "explicit_zero_rate_is_unlimited",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    rate: {records_per_sec: 0}\n",
			check: func(t *testing.T, f *File) {
				r := f.Streams[0].Rate
				if r.RecordsPerSec != 0 || r.BytesPerSec != conf.MiB || r.OnLimit != "backpressure" {
					t.Fatalf("rate = %+v", r)
				}
				if r.WithDefaults() != r {
					t.Fatal("WithDefaults would undo records_per_sec: 0")
				}
			},
		},
		{
			name: "api_disabled",
			yaml: "data_dir: x\napi:\n  listen: \"\"\n",
			check: func(t *testing.T, f *File) {
				if f.API.Listen != "" || f.API.ReadLimits.CallsPerSec != 5 {
					t.Fatalf("api = %+v", f.API)
				}
				if !reflect.DeepEqual(f.API.WithDefaults(), f.API) {
					t.Fatal("WithDefaults would re-enable the API")
				}
			},
		},
		{
			name: "empty_section_keeps_defaults",
			yaml: "data_dir: x\nmqtt:\n",
			check: func(t *testing.T, f *File) {
				if !reflect.DeepEqual(f.MQTT, Default().MQTT) {
					t.Fatalf("mqtt = %+v", f.MQTT)
				}
			},
		},
		{
			name: "sizes_as_plain_integers_and_units",
			yaml: "data_dir: x\nstreams:\n  - name: a\n    max_record_size: 1000\n    segment_size: 1GB\n    max_bytes: 20GiB\n",
			check: func(t *testing.T, f *File) {
				s := f.Streams[0]
				if s.MaxRecordSize != 1000 || s.SegmentSize != conf.GB || s.MaxBytes != 20*conf.GiB {
					t.Fatalf("stream = %+v", s)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("weir.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("rejected:\n%v", err)
			}
			tc.check(t, f)
		})
	}
}

func TestMergeKeys(t *testing.T) {
	src := `data_dir: x
streams:
  - &small
    name: a
    segment_size: 64KiB
    max_record_size: 4KiB
    rate: &slow {records_per_sec: 10, on_limit: reject}
  - <<: *small
    name: b
    rate:
      <<: *slow
      records_per_sec: 20
`
	f, err := Parse("weir.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rejected:\n%v", err)
	}
	b := f.Streams[1]
	if b.Name != "b" || b.SegmentSize != 64*conf.KiB || b.MaxRecordSize != 4*conf.KiB ||
		b.Rate.RecordsPerSec != 20 || b.Rate.OnLimit != "reject" || b.Rate.BytesPerSec != conf.MiB {
		t.Fatalf("merged stream = %+v", b)
	}
}

func TestLineAndWhere(t *testing.T) {
	f, err := Parse("w.yaml", []byte(issue2Minimum))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		line int
	}{
		{"mqtt.listen", 3},
		{"streams[0].shards", 9},
		{"streams[0].rate.max_wait", 8}, // absent: its stream's line
		{"routes[0].partition_key", 13},
		{"api.listen", 0},
	}
	for _, tc := range tests {
		if got := f.Line(tc.path); got != tc.line {
			t.Errorf("Line(%q) = %d, want %d", tc.path, got, tc.line)
		}
	}
	if got := f.Where("mqtt.listen"); got != "w.yaml:3" {
		t.Errorf("Where = %q", got)
	}
	if f.Name() != "w.yaml" || Default().Name() != "defaults" {
		t.Errorf("Name")
	}
}

func TestValidateGoBuiltFile(t *testing.T) {
	f := Default()
	f.Streams[0].Rate.MaxWait = 0
	f.Routes[0].Stream = "nope"
	err := f.Validate()
	want := []string{
		"defaults: streams[0].rate.max_wait: must be > 0 when on_limit is backpressure",
		`defaults: routes[0].stream: unknown stream "nope" (streams[].name: "telemetry")`,
	}
	if err == nil || !slices.Equal(strings.Split(err.Error(), "\n"), want) {
		t.Fatalf("Validate = %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "streams[0].rate.max_wait" {
		t.Fatalf("errors.As *Error = %+v", e)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load missing file = %v", err)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"data_dir", "gateway_id", "streams", "forwarders"}
	tests := []struct{ in, want string }{
		{"datadir", `, did you mean "data_dir"?`},
		{"Streams", `, did you mean "streams"?`},
		{"forwarder", `, did you mean "forwarders"?`},
		{"zzz", "; valid keys here: data_dir, gateway_id, streams, forwarders"},
	}
	for _, tc := range tests {
		if got := suggest(tc.in, known); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
