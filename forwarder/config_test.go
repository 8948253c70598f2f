package forwarder

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/internal/conf"
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

func TestSinkConfigValidate(t *testing.T) {
	httpBase := Config{Stream: "telemetry", Kind: KindHTTP, Name: "hook", HTTP: HTTPConfig{URL: "https://h.example/x"}}
	s3Base := Config{Stream: "telemetry", Kind: KindS3, Name: "archive", S3: s3sink.Config{Bucket: "arch", Endpoint: "http://127.0.0.1:9000"}}
	mqttBase := Config{Stream: "telemetry", Kind: KindMQTT, Name: "bridge", MQTT: MQTTConfig{Broker: "ssl://b.example:8883"}}
	tests := []struct {
		name string
		base Config
		mut  func(*Config)
		want []string
	}{
		{"http_valid", httpBase, func(c *Config) {
			c.HTTP.Headers = []Header{{Name: "Authorization", Env: "TOKEN"}, {Name: "X-Source", Value: "gw"}, {Name: "X-Api-Key", File: "/k"}}
		}, nil},
		{"http_no_url", httpBase, func(c *Config) { c.HTTP.URL = "" }, []string{"http.url: must be set"}},
		{"http_url_credentials", httpBase, func(c *Config) { c.HTTP.URL = "https://u:p@h/x" }, []string{"http.url: must not hold credentials"}},
		{"http_format", httpBase, func(c *Config) { c.HTTP.Format, c.HTTP.Compression = "xml", "br" },
			[]string{`http.format: must be one of json, ndjson, got "xml"`, `http.compression: must be one of gzip, none, got "br"`}},
		{"http_headers", httpBase, func(c *Config) {
			c.HTTP.Headers = []Header{{Name: "X-Token", Value: "abc"}, {Name: "X-A", Env: "A", File: "/f"}, {Name: "Content-Type", Value: "text/plain"}, {Name: "x-a", Env: "B"}}
		}, []string{"http.headers[0].value: X-Token carries credentials", "http.headers[1]: set exactly one of value, env, file",
			"http.headers[2].name: Content-Type is set by the sink", "http.headers[3].name: header x-a is listed twice"}},
		{"http_kinesis_keys", httpBase, func(c *Config) { c.TargetStream, c.Aggregate = "x", true },
			[]string{"target_stream: applies to kind kinesis only", "aggregate: applies to kind kinesis only"}},
		{"http_no_name", httpBase, func(c *Config) { c.Name = "" }, []string{"name: must be set for kind http"}},
		{"mqtt_valid", mqttBase, func(c *Config) {
			c.MQTT.Username, c.MQTT.Password = "u", Secret{File: "/pw"}
			c.MQTT.TLS = MQTTTLS{CAFile: "/ca", CertFile: "/c", KeyFile: "/k"}
			c.MQTT.Topic = "site/{client_id}/{topic}"
		}, nil},
		{"mqtt_tls_on_tcp", mqttBase, func(c *Config) { c.MQTT.Broker = "tcp://b:1883"; c.MQTT.TLS.CAFile = "/ca" },
			[]string{`mqtt.tls: is set, but broker "tcp://b:1883" is tcp://`}},
		{"mqtt_half_keypair", mqttBase, func(c *Config) { c.MQTT.TLS.CertFile = "/c" }, []string{"mqtt.tls: cert_file and key_file go together"}},
		{"mqtt_bad_broker", mqttBase, func(c *Config) { c.MQTT.Broker = "http://b:80" }, []string{`mqtt.broker: "http://b:80" must be a tcp:// or ssl:// URL`}},
		{"mqtt_topic_wildcard", mqttBase, func(c *Config) { c.MQTT.Topic = "a/+/{topic}" }, []string{"mqtt.topic:"}},
		{"mqtt_password_both", mqttBase, func(c *Config) { c.MQTT.Username, c.MQTT.Password = "u", Secret{Env: "A", File: "/f"} },
			[]string{"mqtt.password: set env or file, not both"}},
		{"s3_valid", s3Base, func(c *Config) { c.S3.Compression, c.S3.Format, c.S3.Prefix = "zstd", "raw", "{gateway}/{shard}/" }, nil},
		{"s3_section_errors", s3Base, func(c *Config) {
			c.S3.Bucket, c.S3.Format, c.S3.MaxObjectAge = "", "csv", conf.Duration(time.Millisecond)
		},
			[]string{"s3.bucket: must not be empty", `s3.format: must be one of jsonl, raw, got "csv"`, "s3.max_object_age: must be 1s..24h"}},
		{"s3_kinesis_keys", s3Base, func(c *Config) { c.Region, c.Envelope = "eu-west-1", "json" },
			[]string{"region: applies to kind kinesis only, this forwarder is kind s3: set s3.region instead", "envelope: applies to kind kinesis"}},
		{"s3_section_on_http", httpBase, func(c *Config) { c.S3.Bucket = "arch" }, []string{"s3: is set, but this forwarder is kind http"}},
		{"section_of_other_kind", httpBase, func(c *Config) { c.MQTT.Broker = "tcp://b:1883" },
			[]string{"mqtt: is set, but this forwarder is kind http"}},
		{"bad_kind_priority_filter", httpBase, func(c *Config) {
			c.Kind, c.Priority = "kafka", 101
			c.HTTP = HTTPConfig{}
			c.Filter = Filter{Topics: []string{"a/b+"}, JSON: []JSONCond{{Path: "a..b"}}}
		}, []string{`kind: must be one of kinesis, http, mqtt, s3, got "kafka"`, "priority: must be 0..100", "filter.topics[0]:", "filter.json[0].path:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.base
			tc.mut(&c)
			c = c.WithDefaults()
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
	if c := (Config{TargetStream: "up"}).WithDefaults(); c.Consumer() != "forwarder:up" || c.Target() != "up" {
		t.Errorf("kinesis naming: %q %q", c.Consumer(), c.Target())
	}
	if c := httpBase.WithDefaults(); c.Consumer() != "forwarder:hook" || c.Target() != "http:https://h.example/x" {
		t.Errorf("http naming: %q %q", c.Consumer(), c.Target())
	}
	if c := s3Base.WithDefaults(); c.Consumer() != "forwarder:archive" || c.Target() != "s3://arch" {
		t.Errorf("s3 naming: %q %q", c.Consumer(), c.Target())
	}
}
