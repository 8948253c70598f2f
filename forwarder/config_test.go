package forwarder

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	base := Config{Stream: "telemetry", TargetStream: "telemetry-cloud", Region: "eu-west-1"}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"defaults_valid", func(*Config) {}, nil},
		{"endpoint_without_region", func(c *Config) { c.Region, c.Endpoint = "", "http://127.0.0.1:4567" }, nil},
		{"no_region_no_endpoint", func(c *Config) { c.Region = "" }, []string{"region: must be set when endpoint is empty"}},
		{"bad_endpoint", func(c *Config) { c.Endpoint = "127.0.0.1:4567" }, []string{`endpoint: "127.0.0.1:4567" must be an http:// or https:// URL`}},
		{"no_streams", func(c *Config) { c.Stream, c.TargetStream = "", "" }, []string{"stream: must not be empty", "target_stream: must not be empty"}},
		{"bad_target", func(c *Config) { c.TargetStream = "a b" }, []string{`target_stream: "a b" is not a valid Kinesis stream name`}},
		{"envelope", func(c *Config) { c.Envelope = "cbor" }, []string{`envelope: must be one of raw, json, got "cbor"`}},
		{"numbers", func(c *Config) { c.MaxBytesPerSec, c.MaxInFlight, c.Linger, c.RequestTimeout = -1, 100, -1, -1 },
			[]string{"max_bytes_per_sec:", "max_in_flight: must be 1..64", "linger: must be > 0", "request_timeout: must be > 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base.WithDefaults()
			tc.mutate(&c)
			errs := c.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("Validate = %v, want %d errors", errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("[%d] = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
	d := Config{}.WithDefaults()
	if d.Envelope != "raw" || d.MaxInFlight != 4 || d.Linger.String() != "50ms" || d.RequestTimeout.String() != "10s" {
		t.Fatalf("defaults = %+v", d)
	}
}
