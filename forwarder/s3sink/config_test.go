package s3sink_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"gopkg.in/yaml.v3"

	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/internal/conf"
)

func TestDefaults(t *testing.T) {
	c := s3sink.Config{Bucket: "b", Region: "eu-west-1"}.WithDefaults()
	want := s3sink.Config{Bucket: "b", Region: "eu-west-1", Prefix: "{stream}/{yyyy}/{MM}/{dd}/{HH}/", Format: "jsonl", Compression: "gzip",
		MaxObjectBytes: 5 << 20, MaxObjectAge: conf.Duration(5 * time.Minute), PathStyle: s3sink.PathStyleAuto}
	if c != want {
		t.Fatalf("defaults\n%+v\nwant\n%+v", c, want)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults do not validate: %v", errs)
	}
}

func TestValidate(t *testing.T) {
	base := s3sink.Config{Bucket: "b", Endpoint: "http://127.0.0.1:9000"}.WithDefaults()
	cases := []struct {
		name   string
		change func(*s3sink.Config)
		path   string // "" = valid
		msg    string
	}{
		{"ok", func(*s3sink.Config) {}, "", ""},
		{"no_bucket", func(c *s3sink.Config) { c.Bucket = "" }, "bucket", "must not be empty"},
		{"slash_bucket", func(c *s3sink.Config) { c.Bucket = "a/b" }, "bucket", "not a bucket name"},
		{"key_placeholder", func(c *s3sink.Config) { c.Prefix = "{stream}/{key}/" }, "prefix", "{key} is not offered"},
		{"unknown_placeholder", func(c *s3sink.Config) { c.Prefix = "{yy}/" }, "prefix", "unknown placeholder {yy}"},
		{"unclosed", func(c *s3sink.Config) { c.Prefix = "{stream/" }, "prefix", "without '}'"},
		{"stray_close", func(c *s3sink.Config) { c.Prefix = "a}/{stream}" }, "prefix", "without '{'"},
		{"leading_slash", func(c *s3sink.Config) { c.Prefix = "/{stream}/" }, "prefix", "must not start with '/'"},
		{"all_placeholders", func(c *s3sink.Config) { c.Prefix = "{gateway}/{stream}/{shard}/{yyyy}-{MM}-{dd}T{HH}:{mm}/" }, "", ""},
		{"format", func(c *s3sink.Config) { c.Format = "parquet" }, "format", "jsonl, raw"},
		{"compression", func(c *s3sink.Config) { c.Compression = "lz4" }, "compression", "gzip, zstd, none"},
		{"small_objects", func(c *s3sink.Config) { c.MaxObjectBytes = 100 }, "max_object_bytes", "must be 1KiB"},
		{"huge_objects", func(c *s3sink.Config) { c.MaxObjectBytes = 1 << 30 }, "max_object_bytes", "built in memory"},
		{"age", func(c *s3sink.Config) { c.MaxObjectAge = conf.Duration(time.Millisecond) }, "max_object_age", "1s..24h"},
		{"endpoint_path", func(c *s3sink.Config) { c.Endpoint = "http://host:9000/bucket" }, "endpoint", "without a path"},
		{"endpoint_scheme", func(c *s3sink.Config) { c.Endpoint = "s3://bucket" }, "endpoint", "http:// or https://"},
		{"no_region", func(c *s3sink.Config) { c.Endpoint = "" }, "region", "must be set when endpoint is empty"},
		{"path_style", func(c *s3sink.Config) { c.PathStyle = "yes" }, "path_style", "true, false or auto"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.change(&c)
			errs := c.Validate()
			if tc.path == "" {
				if len(errs) != 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("got %d errors %v, want one at %s", len(errs), errs, tc.path)
			}
			var fe conf.FieldError
			if !errors.As(errs[0], &fe) || fe.Path != tc.path || !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("got %v, want %s: ...%s...", errs[0], tc.path, tc.msg)
			}
		})
	}
}

func TestPathStyleYAML(t *testing.T) {
	for in, want := range map[string]s3sink.PathStyle{"true": s3sink.PathStyleTrue, "false": s3sink.PathStyleFalse, "auto": s3sink.PathStyleAuto} {
		var c s3sink.Config
		if err := yaml.Unmarshal([]byte("path_style: "+in), &c); err != nil || c.PathStyle != want {
			t.Errorf("path_style: %s gave %q, %v", in, c.PathStyle, err)
		}
	}
	var c s3sink.Config
	if err := yaml.Unmarshal([]byte("path_style: sometimes"), &c); err == nil || !strings.Contains(err.Error(), "true, false or auto") {
		t.Errorf("path_style: sometimes: %v", err)
	}
	for _, tc := range []struct {
		p        s3sink.PathStyle
		endpoint string
		want     bool
	}{{s3sink.PathStyleAuto, "", false}, {s3sink.PathStyleAuto, "http://minio:9000", true}, {s3sink.PathStyleFalse, "http://minio:9000", false}, {s3sink.PathStyleTrue, "", true}} {
		if got := tc.p.Use(tc.endpoint); got != tc.want {
			t.Errorf("%s.Use(%q) = %v", tc.p, tc.endpoint, got)
		}
	}
}

// apiError builds the error the SDK returns for an S3 error response.
func apiError(status int, code string) error {
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status}}
	var err error = &smithyhttp.ResponseError{Response: resp, Err: &smithy.GenericAPIError{Code: code, Message: "m"}}
	if code == "" {
		err = &smithyhttp.ResponseError{Response: resp, Err: errors.New("no body")}
	}
	return &awshttp.ResponseError{ResponseError: err.(*smithyhttp.ResponseError)}
}

// TestClassify covers the answers s3rver cannot give (it checks no
// signatures, policies or rates).
func TestClassify(t *testing.T) {
	cases := []struct {
		err    error
		perm   bool
		reason string
	}{
		{apiError(403, "SignatureDoesNotMatch"), true, "secret key is wrong"},
		{apiError(403, "AccessDenied"), true, "s3:PutObject"},
		{apiError(400, "ExpiredToken"), true, "expired"},
		{apiError(400, "AuthorizationHeaderMalformed"), true, "region"},
		{apiError(301, ""), true, "region"},
		{apiError(403, ""), true, "s3:PutObject"},
		{apiError(404, ""), true, "path_style"},
		{apiError(403, "KMS.AccessDeniedException"), true, "KMS"},
		{apiError(503, "SlowDown"), false, "SlowDown (HTTP 503)"},
		{apiError(500, "InternalError"), false, "InternalError (HTTP 500)"},
		{apiError(400, "RequestTimeout"), false, "RequestTimeout"},
		{apiError(400, "BadDigest"), false, "BadDigest"},
		{apiError(404, "NoSuchUpload"), false, "NoSuchUpload"},
		{apiError(503, ""), false, "HTTP 503"},
		{errors.New("dial tcp: connection refused"), false, "connection error"},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), false, "timeout"},
	}
	for _, tc := range cases {
		perm, reason := s3sink.Classify(tc.err)
		if perm != tc.perm || !strings.Contains(reason, tc.reason) {
			t.Errorf("%v: permanent %v %q, want %v ...%s...", tc.err, perm, reason, tc.perm, tc.reason)
		}
	}
}

func TestKey(t *testing.T) {
	o := s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000002", Records: telemetry(2, 1, 42)}
	for _, tc := range []struct {
		prefix, gateway, compression, want string
	}{
		{"", "gw-1", "gzip", "telemetry/2026/03/04/05/telemetry-shardId-000000000002-00000000000000000042-gw-1.jsonl.gz"},
		{"{gateway}/{shard}/{yyyy}{MM}{dd}-{HH}{mm}/", "gw-2", "zstd", "gw-2/shardId-000000000002/20260304-0506/telemetry-shardId-000000000002-00000000000000000042-gw-2.jsonl.zst"},
		{"", "", "zstd", "telemetry/2026/03/04/05/telemetry-shardId-000000000002-00000000000000000042.jsonl.zst"},
		{"archive-", "edge:7", "none", "archive-telemetry-shardId-000000000002-00000000000000000042-edge:7.jsonl"},
	} {
		cfg := s3sink.Config{Bucket: "b", Region: "eu-west-1", Prefix: tc.prefix, Compression: tc.compression}
		w, err := s3sink.New(context.Background(), cfg, s3sink.Options{Gateway: tc.gateway})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Key(o); got != tc.want {
			t.Errorf("prefix %q gateway %q: %s, want %s", tc.prefix, tc.gateway, got, tc.want)
		}
		w.Close()
	}
	_, err := s3sink.New(context.Background(), s3sink.Config{Bucket: "b", Region: "r", Prefix: "{gateway}/"}, s3sink.Options{})
	if !errors.Is(err, s3sink.ErrInvalidConfig) {
		t.Errorf("{gateway} without a gateway id: %v", err)
	}
}
