package ingest

import (
	"strings"
	"testing"

	"github.com/weir-gateway/weir/internal/conf"
)

func TestConfigDefaultsValidate(t *testing.T) {
	c := Config{}.WithDefaults()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	if c.Listen != DefaultListen || c.MaxPendingWrites != 32 || c.ReceiveMaximum != 64 || c.MaxInflight != 64 || c.ConnectTimeout.String() != "10s" {
		t.Fatalf("defaults = %+v", c)
	}
	if got := c.PacketSize(conf.MiB); got != conf.MiB+64*conf.KiB {
		t.Fatalf("PacketSize = %v", got)
	}
	c.MaxPacketSize = 4 * conf.KiB
	if got := c.PacketSize(conf.MiB); got != 4*conf.KiB {
		t.Fatalf("explicit PacketSize = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"empty_listen", func(c *Config) { c.Listen = "" }, "listen: must not be empty"},
		{"bad_listen", func(c *Config) { c.Listen = "localhost" }, `listen: invalid listen address "localhost"`},
		{"packet_too_small", func(c *Config) { c.MaxPacketSize = 10 }, "max_packet_size: must be 0"},
		{"no_connect_timeout", func(c *Config) { c.ConnectTimeout = -1 }, "connect_timeout: must be > 0"},
		{"receive_maximum", func(c *Config) { c.ReceiveMaximum = 70000 }, "receive_maximum: must be 1..65535"},
		{"pending_writes", func(c *Config) { c.MaxPendingWrites = -1 }, "max_pending_writes: must be 1..65535"},
		{"inflight", func(c *Config) { c.MaxInflight = -3 }, "max_inflight: must be 1..65535"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{}.WithDefaults()
			tc.mutate(&c)
			errs := c.Validate()
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.want) {
				t.Fatalf("Validate = %v; want one error starting %q", errs, tc.want)
			}
		})
	}
}

func TestRouteValidate(t *testing.T) {
	tests := []struct {
		name  string
		route Route
		want  string // "" = valid
	}{
		{"plain", Route{Filter: "devices/+/telemetry", Stream: "t", PartitionKey: "{topic.1}"}, ""},
		{"hash_all", Route{Filter: "#", Stream: "t"}, ""},
		{"hash_tail", Route{Filter: "a/b/#", Stream: "t"}, ""},
		{"plus_only", Route{Filter: "+", Stream: "t"}, ""},
		{"empty_levels", Route{Filter: "a//b", Stream: "t"}, ""},
		{"empty_filter", Route{Stream: "t"}, "filter: must not be empty"},
		{"hash_middle", Route{Filter: "a/#/b", Stream: "t"}, "filter: '#' must be a whole level and the last one"},
		{"hash_in_level", Route{Filter: "a/b#", Stream: "t"}, "filter: '#' must be a whole level and the last one"},
		{"plus_in_level", Route{Filter: "a/b+/c", Stream: "t"}, "filter: '+' must be a whole level"},
		{"nul", Route{Filter: "a/\x00", Stream: "t"}, "filter: must not contain NUL"},
		{"shared", Route{Filter: "$share/g/a", Stream: "t"}, "filter: shared subscription filters"},
		{"no_stream", Route{Filter: "a"}, "stream: must not be empty"},
		{"bad_key", Route{Filter: "a", Stream: "t", PartitionKey: "{nope}"}, "partition_key: unknown placeholder {nope}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.route.WithDefaults().Validate()
			if tc.want == "" {
				if len(errs) != 0 {
					t.Fatalf("Validate = %v; want none", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.want) {
				t.Fatalf("Validate = %v; want one error starting %q", errs, tc.want)
			}
		})
	}
	if r := (Route{}).WithDefaults(); r.PartitionKey != "{client_id}" {
		t.Fatalf("default partition key %q", r.PartitionKey)
	}
}
