package fleet

import (
	"errors"
	"testing"
)

func TestTemplates(t *testing.T) {
	v := tmplVars{n: 7, i: 1234, group: "cam", id: "cam-007", clientID: "c7"}
	cases := map[string]string{
		"dev-{n:05}":             "dev-00007",
		"{group}-{n:03}":         "cam-007",
		"{i}/{i:6}":              "1234/001234",
		"devices/{id}/telemetry": "devices/cam-007/telemetry",
		"{client_id}":            "c7",
		"{{literal}} {n}":        "{literal} 7",
		"plain":                  "plain",
		"{n:2}":                  "07",
		"x{n:1}y":                "x7y",
	}
	for tmpl, want := range cases {
		tt, err := parseTemplate(tmpl, keyFields...)
		if err != nil {
			t.Fatalf("%q: %v", tmpl, err)
		}
		if got := tt.render(v); got != want {
			t.Errorf("%q rendered %q, want %q", tmpl, got, want)
		}
	}
	for _, bad := range []string{"{", "}", "{nope}", "{n:0}", "{n:x}", "{id:3}", "a{n"} {
		if _, err := parseTemplate(bad, keyFields...); !errors.Is(err, ErrBadTemplate) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
	if _, err := parseTemplate("{id}", "n", "i", "group"); err == nil {
		t.Error("{id} allowed in the id template itself")
	}
}

func TestSizes(t *testing.T) {
	ok := map[string]SizeRange{
		"0": {0, 0}, "200": {200, 200}, "4KiB": {4096, 4096}, "1MiB": {1 << 20, 1 << 20},
		"2KB": {2000, 2000}, "64KiB-256KiB": {64 << 10, 256 << 10}, "10-20": {10, 20}, "1.5KiB": {1536, 1536},
	}
	for s, want := range ok {
		got, err := ParseSizeRange(s)
		if err != nil || got != want {
			t.Errorf("%q = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "x", "-1", "20-10", "5GiB", "1TB"} {
		if _, err := ParseSizeRange(s); !errors.Is(err, ErrBadSize) {
			t.Errorf("%q accepted (%v)", s, err)
		}
	}
}
