package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// standard is what encoding/json writes for s, quotes included.
func standard(t testing.TB, s string, escapeHTML bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "\b\f\n\r\t\x00\x1f\x7f", "<a href=x&y>", "bad \xff utf8 \xc3",
		"line\u2028para\u2029", "ünïcødé ✓ 𝄞", "devices/+/telemetry#"} {
		for _, html := range []bool{true, false} {
			if got, want := AppendQuoted(nil, s, html), standard(t, s, html); !bytes.Equal(got, want) {
				t.Errorf("AppendQuoted(%q, html=%v) = %s, encoding/json writes %s", s, html, got, want)
			}
		}
	}
}

func FuzzMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "a\"b", "<&>", "\xff\xfe", "\u2028", "\x01"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, html bool) {
		if got, want := AppendQuoted([]byte("x"), s, html), append([]byte("x"), standard(t, s, html)...); !bytes.Equal(got, want) {
			t.Fatalf("AppendQuoted(%q, html=%v) = %s, encoding/json writes %s", s, html, got, want)
		}
	})
}
