package s3sink

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/weir-gateway/weir/internal/conf"
)

// Formats of an object's contents; see FORMAT.md.
const (
	FormatJSONL = "jsonl"
	FormatRaw   = "raw"
)

// Compressions of an object.
const (
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// DefaultPrefix is the prefix an empty `prefix` gets: one "directory" per
// stream and UTC hour, as Firehose lays out its objects.
const DefaultPrefix = "{stream}/{yyyy}/{MM}/{dd}/{HH}/"

// Bounds of the buffering hints. The size is capped at Firehose's
// largest buffer: objects are built in memory (compressed, or up to 3.5
// times the payload for small records in uncompressed jsonl). The age is
// capped at a day so that a quiet stream is still archived daily.
const (
	minObjectBytes = 1 << 10
	maxObjectBytes = 128 << 20
	maxObjectAge   = 24 * time.Hour
)

// Config is the S3 part of a forwarder of kind s3. Its YAML keys are the
// sink's own; the engine owns stream, kind, priority and the like.
type Config struct {
	Bucket string `yaml:"bucket"`
	// Prefix is a template for the start of every object key; see
	// Placeholders. Empty means DefaultPrefix.
	Prefix      string `yaml:"prefix"`
	Format      string `yaml:"format"`      // jsonl | raw
	Compression string `yaml:"compression"` // gzip | zstd | none
	// MaxObjectBytes and MaxObjectAge are Firehose's buffering hints: the
	// engine closes an object when its records' data reach MaxObjectBytes
	// (counted before encoding and compression) or when its first record
	// has waited MaxObjectAge, whichever comes first.
	MaxObjectBytes conf.ByteSize `yaml:"max_object_bytes"`
	MaxObjectAge   conf.Duration `yaml:"max_object_age"`
	Endpoint       string        `yaml:"endpoint"` // "" = AWS for Region
	Region         string        `yaml:"region"`
	PathStyle      PathStyle     `yaml:"path_style"`
	Profile        string        `yaml:"profile"` // "" = the default credential chain
}

// PathStyle is `path_style`: auto, true or false. Auto means path-style
// URLs (http://host/bucket/key) when an endpoint is set, as MinIO, Ceph
// RGW and other S3-compatible stores need, and virtual-hosted ones
// (http://bucket.host/key) on AWS.
type PathStyle string

// The values of PathStyle.
const (
	PathStyleAuto  PathStyle = "auto"
	PathStyleTrue  PathStyle = "true"
	PathStyleFalse PathStyle = "false"
)

// UnmarshalYAML takes true, false or auto.
func (p *PathStyle) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			*p = PathStyleFalse
			if b {
				*p = PathStyleTrue
			}
			return nil
		}
	}
	if n.Kind == yaml.ScalarNode && n.Value == string(PathStyleAuto) {
		*p = PathStyleAuto
		return nil
	}
	return fmt.Errorf("must be true, false or auto (path-style when an endpoint is set), got %q", n.Value)
}

// Use reports whether path-style URLs are used with endpoint.
func (p PathStyle) Use(endpoint string) bool {
	switch p {
	case PathStyleTrue:
		return true
	case PathStyleFalse:
		return false
	}
	return endpoint != ""
}

// Defaults fills the fields whose zero value is not a valid setting:
// prefix DefaultPrefix, format jsonl, compression gzip, 5 MiB and 5
// minutes (Firehose's defaults), path_style auto.
func (c *Config) Defaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Format == "" {
		c.Format = FormatJSONL
	}
	if c.Compression == "" {
		c.Compression = CompressionGzip
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = 5 << 20
	}
	if c.MaxObjectAge == 0 {
		c.MaxObjectAge = conf.Duration(5 * time.Minute)
	}
	if c.PathStyle == "" {
		c.PathStyle = PathStyleAuto
	}
}

// WithDefaults returns a copy of c with Defaults applied.
func (c Config) WithDefaults() Config {
	c.Defaults()
	return c
}

// Validate checks the sink's keys; paths are relative to its section.
func (c Config) Validate() []error {
	var errs conf.ErrorList
	switch {
	case c.Bucket == "":
		errs.Add("bucket", "must not be empty")
	case len(c.Bucket) > 255 || strings.ContainsAny(c.Bucket, "/ \t\r\n") || !utf8.ValidString(c.Bucket):
		errs.Add("bucket", "%q is not a bucket name: at most 255 characters, no '/' or spaces (AWS: 3-63 of a-z 0-9 . -)", c.Bucket)
	}
	if _, err := parsePrefix(c.Prefix); err != nil {
		errs.AddErr("prefix", err)
	}
	errs.Enum("format", c.Format, FormatJSONL, FormatRaw)
	errs.Enum("compression", c.Compression, CompressionGzip, CompressionZstd, CompressionNone)
	if c.MaxObjectBytes < minObjectBytes || c.MaxObjectBytes > maxObjectBytes {
		errs.Add("max_object_bytes", "must be %v..%v (objects are built in memory), got %v",
			conf.ByteSize(minObjectBytes), conf.ByteSize(maxObjectBytes), c.MaxObjectBytes)
	}
	if c.MaxObjectAge < conf.Duration(time.Second) || c.MaxObjectAge.D() > maxObjectAge {
		errs.Add("max_object_age", "must be 1s..24h, got %v", c.MaxObjectAge)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs.Add("endpoint", "%q must be an http:// or https:// URL without a path, e.g. http://127.0.0.1:9000 (the bucket goes in bucket)", c.Endpoint)
		}
	} else if c.Region == "" {
		errs.Add("region", "must be set when endpoint is empty (AWS's endpoint is derived from the region), e.g. eu-west-1")
	}
	switch c.PathStyle {
	case PathStyleAuto, PathStyleTrue, PathStyleFalse:
	default:
		errs.Add("path_style", "must be true, false or auto, got %q", string(c.PathStyle))
	}
	return errs
}

// Placeholders lists what a prefix may contain. Times are the arrival of
// the object's first record, in UTC, so a retry renders the same prefix.
// There is no {key}: an object holds a run of one shard, which mixes many
// partition keys.
var Placeholders = []string{"{stream}", "{shard}", "{gateway}", "{yyyy}", "{MM}", "{dd}", "{HH}", "{mm}"}

// maxPrefixLen leaves room for the object name within S3's 1024-byte keys.
const maxPrefixLen = 512

// prefixPart is a literal (name == "") or a placeholder.
type prefixPart struct{ lit, name string }

type prefixTemplate []prefixPart

func parsePrefix(s string) (prefixTemplate, error) {
	if s == "" {
		s = DefaultPrefix
	}
	if len(s) > maxPrefixLen {
		return nil, fmt.Errorf("is %d bytes long, at most %d", len(s), maxPrefixLen)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("is not valid UTF-8")
	}
	if strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("%q must not start with '/' (S3 keys have no leading slash; it would make an empty first path segment)", s)
	}
	var t prefixTemplate
	for rest := s; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.ContainsRune(rest, '}') {
				return nil, fmt.Errorf("%q has a '}' without '{'", s)
			}
			t = append(t, prefixPart{lit: rest})
			break
		}
		if open > 0 {
			if strings.ContainsRune(rest[:open], '}') {
				return nil, fmt.Errorf("%q has a '}' without '{'", s)
			}
			t = append(t, prefixPart{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q has a '{' without '}'", s)
		}
		name := rest[open : open+end+1]
		known := false
		for _, p := range Placeholders {
			known = known || p == name
		}
		if !known {
			hint := ""
			if name == "{key}" {
				hint = " ({key} is not offered: an object holds one shard's records, which have many keys)"
			}
			return nil, fmt.Errorf("%q: unknown placeholder %s%s; use %s", s, name, hint, strings.Join(Placeholders, " "))
		}
		t = append(t, prefixPart{name: name})
		rest = rest[open+end+1:]
	}
	return t, nil
}

// render expands the template for one object; at is in UTC.
func (t prefixTemplate) render(stream, shard, gateway string, at time.Time) string {
	var b strings.Builder
	for _, p := range t {
		switch p.name {
		case "":
			b.WriteString(p.lit)
		case "{stream}":
			b.WriteString(stream)
		case "{shard}":
			b.WriteString(shard)
		case "{gateway}":
			b.WriteString(gateway)
		case "{yyyy}":
			fmt.Fprintf(&b, "%04d", at.Year())
		case "{MM}":
			fmt.Fprintf(&b, "%02d", int(at.Month()))
		case "{dd}":
			fmt.Fprintf(&b, "%02d", at.Day())
		case "{HH}":
			fmt.Fprintf(&b, "%02d", at.Hour())
		case "{mm}":
			fmt.Fprintf(&b, "%02d", at.Minute())
		}
	}
	return b.String()
}
