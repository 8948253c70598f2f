package conf

import (
	"errors"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		err  string
	}{
		{name: "millis", in: "10ms", want: 10 * time.Millisecond},
		{name: "hours", in: "24h", want: 24 * time.Hour},
		{name: "compound", in: "1h30m", want: 90 * time.Minute},
		{name: "zero", in: "0", want: 0},
		{name: "spaces", in: " 2s ", want: 2 * time.Second},
		{name: "bare_number", in: "10", err: `invalid duration "10": a duration needs a unit, e.g. 10s or 10ms`},
		{name: "days", in: "7d", err: `invalid duration "7d": there is no day unit; write 168h`},
		{name: "garbage", in: "abc", err: `invalid duration "abc": use Go duration syntax with units ns, us, ms, s, m, h, e.g. 1h30m`},
		{name: "empty", in: "", err: `invalid duration "": empty; write e.g. 500ms, 10s, 24h`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseDuration(%q) error = %v, want %q", tc.in, err, tc.err)
				}
				if !errors.Is(err, ErrInvalidValue) {
					t.Fatalf("error %v does not wrap ErrInvalidValue", err)
				}
				return
			}
			if err != nil || got.D() != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tc.in, got.D(), err, tc.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{"zero", 0, "0s"},
		{"hours", 24 * time.Hour, "24h"},
		{"minutes", 2 * time.Minute, "2m"},
		{"hours_minutes", 90 * time.Minute, "1h30m"},
		{"hours_seconds", time.Hour + 5*time.Second, "1h0m5s"},
		{"millis", 10 * time.Millisecond, "10ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Duration(tc.in).String()
			if got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			back, err := ParseDuration(got)
			if err != nil || back.D() != tc.in {
				t.Fatalf("round trip %q = %v, %v", got, back.D(), err)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		err  bool
	}{
		{name: "plain", in: "512", want: 512},
		{name: "bytes", in: "512B", want: 512},
		{name: "kib", in: "4KiB", want: 4096},
		{name: "mib", in: "1MiB", want: 1 << 20},
		{name: "gib", in: "1GiB", want: 1 << 30},
		{name: "tib", in: "2TiB", want: 2 << 40},
		{name: "kb_decimal", in: "1KB", want: 1000},
		{name: "mb_decimal", in: "16MB", want: 16_000_000},
		{name: "gb_decimal", in: "1GB", want: 1_000_000_000},
		{name: "space_and_case", in: "2 mib", want: 2 << 20},
		{name: "zero", in: "0", want: 0},
		{name: "fraction", in: "1.5MiB", err: true},
		{name: "negative", in: "-1KiB", err: true},
		{name: "unknown_unit", in: "1XB", err: true},
		{name: "no_number", in: "MiB", err: true},
		{name: "empty", in: "", err: true},
		{name: "overflow", in: "99999999999TiB", err: true},
		{name: "huge_number", in: "99999999999999999999", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseByteSize(tc.in)
			if tc.err {
				if err == nil || !errors.Is(err, ErrInvalidValue) {
					t.Fatalf("ParseByteSize(%q) = %v, %v; want ErrInvalidValue", tc.in, got, err)
				}
				return
			}
			if err != nil || got.Bytes() != tc.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got.Bytes(), err, tc.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		name string
		in   ByteSize
		want string
	}{
		{"zero", 0, "0"},
		{"bytes", 1500, "1500B"},
		{"kib", 4 * KiB, "4KiB"},
		{"mib", 16 * MiB, "16MiB"},
		{"gb", GB, "1GB"},
		{"kb", 2 * KB, "2KB"},
		{"thousand_kib", 1000 * KiB, "1000KiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.String()
			if got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			back, err := ParseByteSize(got)
			if err != nil || back != tc.in {
				t.Fatalf("round trip %q = %d, %v", got, back, err)
			}
		})
	}
}

func TestYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
		S ByteSize `yaml:"s"`
		N ByteSize `yaml:"n"`
	}
	if err := yaml.Unmarshal([]byte("d: 2s\ns: 1MiB\nn: 4096\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.D.D() != 2*time.Second || v.S != MiB || v.N != 4096 {
		t.Fatalf("decoded %+v", v)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := "d: 2s\ns: 1MiB\n\"n\": 4KiB\n"; string(out) != want {
		t.Fatalf("encoded %q, want %q", out, want)
	}
	if err := yaml.Unmarshal([]byte("d: [1]\n"), &v); err == nil {
		t.Fatal("sequence accepted as duration")
	}
	if err := yaml.Unmarshal([]byte("s: 1.5\n"), &v); err == nil {
		t.Fatal("float accepted as size")
	}
}

func TestPrefix(t *testing.T) {
	errs := []error{
		Errorf("rate.max_wait", "must be > 0"),
		Errorf("", "whole thing"),
		errors.New("plain"),
	}
	got := Prefix("streams[0]", errs)
	want := []string{
		"streams[0].rate.max_wait: must be > 0",
		"streams[0]: whole thing",
		"streams[0]: plain",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors", len(got))
	}
	for i := range want {
		if got[i].Error() != want[i] {
			t.Errorf("[%d] = %q, want %q", i, got[i], want[i])
		}
		var fe FieldError
		if !errors.As(got[i], &fe) {
			t.Errorf("[%d] is not a FieldError", i)
		}
	}
	if Join("streams", "[1]") != "streams[1]" || Index("routes", 3) != "routes[3]" {
		t.Fatal("Join/Index")
	}
	if Prefix("x", nil) != nil {
		t.Fatal("Prefix of nothing is not nil")
	}
}

func TestErrorList(t *testing.T) {
	var l ErrorList
	l.Add("a", "bad %d", 1)
	l.AddErr("b", nil)
	l.AddErr("b", &ValueError{Type: "size", Value: "x", Reason: "r"})
	l.Nest("c", []error{Errorf("d", "m")})
	l.Enum("e", "x", "y", "z")
	l.Enum("f", "y", "y", "z")
	want := []string{"a: bad 1", `b: invalid size "x": r`, "c.d: m", `e: must be one of y, z, got "x"`}
	if len(l) != len(want) {
		t.Fatalf("got %v", l)
	}
	for i := range want {
		if l[i].Error() != want[i] {
			t.Errorf("[%d] = %q, want %q", i, l[i], want[i])
		}
	}
}

func TestListen(t *testing.T) {
	tests := []struct {
		name     string
		addr     string
		valid    bool
		loopback bool
	}{
		{"ipv4_loopback", "127.0.0.1:1883", true, true},
		{"ipv4_loopback_other", "127.0.0.2:1883", true, true},
		{"ipv6_loopback", "[::1]:1883", true, true},
		{"localhost", "localhost:0", true, true},
		{"wildcard", "0.0.0.0:1883", true, false},
		{"empty_host", ":1883", true, false},
		{"lan", "192.168.1.10:1883", true, false},
		{"hostname", "gw.local:1883", true, false},
		{"no_port", "127.0.0.1", false, false},
		{"bad_port", "127.0.0.1:http", false, true},
		{"port_range", "127.0.0.1:70000", false, true},
		{"empty", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckListen(tc.addr)
			if (err == nil) != tc.valid {
				t.Fatalf("CheckListen(%q) = %v, want valid=%v", tc.addr, err, tc.valid)
			}
			if got := IsLoopback(tc.addr); got != tc.loopback {
				t.Fatalf("IsLoopback(%q) = %v, want %v", tc.addr, got, tc.loopback)
			}
		})
	}
}
