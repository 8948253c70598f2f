package console

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

func TestDecodePayload(t *testing.T) {
	cb, _ := cbor.Marshal(map[string]any{"temp": 21.5, "raw": []byte{1, 2}, "tags": []any{1, "a"}})
	nested, _ := cbor.Marshal(map[int]any{1: map[string]any{"x": nil}})
	for _, tc := range []struct {
		name string
		in   []byte
		kind string
		text string
	}{
		{"json object", []byte(`{"a":1,"b":[true,null]}`), "json", "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null\n  ]\n}"},
		{"json number", []byte(`42`), "json", "42"},
		{"cbor map", cb, "cbor", `"raw": "base64:AQI="`},
		{"cbor int keys", nested, "cbor", `"1": {`},
		{"text", []byte("temperature=21.5 ok"), "text", "temperature=21.5 ok"},
		{"binary", []byte{0x00, 0x01, 0xfe}, "hex", "00000000  00 01 fe\n"},
		{"one byte is not cbor", []byte{0x01}, "hex", "00000000  01\n"},
		{"empty", nil, "hex", ""},
		{"cbor with trailing bytes", append(append([]byte{}, cb...), 0x00), "hex", "00000000"},
	} {
		d := DecodePayload(tc.in)
		if d.Kind != tc.kind || !strings.Contains(d.Text, tc.text) || d.Size != len(tc.in) {
			t.Errorf("%s: %s %q (size %d)", tc.name, d.Kind, d.Text, d.Size)
		}
	}
	big := bytes.Repeat([]byte{0xff}, maxShown+10)
	if d := DecodePayload(big); !d.Truncated || d.Kind != "hex" || d.Size != maxShown+10 || strings.Count(d.Text, "\n") != maxShown/16 {
		t.Errorf("large payload: truncated %v kind %s size %d", d.Truncated, d.Kind, d.Size)
	}
}

// FuzzDecodePayload: any payload is shown without a panic, in one of the
// four kinds, as valid UTF-8, and the JSON kinds are valid JSON.
func FuzzDecodePayload(f *testing.F) {
	cb, _ := cbor.Marshal(map[string]any{"temp": 21.5, "raw": []byte{1, 2}})
	for _, s := range [][]byte{[]byte(`{"a":1}`), cb, []byte("hello"), {0, 1, 2}, {0xd8, 0x20, 0x63, 0x61, 0x62, 0x63}, {0xf9, 0x7c, 0x00}, {0xa1, 0xa0, 0x01}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := DecodePayload(b)
		if d.Size != len(b) || !utf8.ValidString(d.Text) {
			t.Fatalf("kind %s size %d text valid %v", d.Kind, d.Size, utf8.ValidString(d.Text))
		}
		switch d.Kind {
		case "json", "cbor":
			if !json.Valid([]byte(d.Text)) {
				t.Fatalf("%s kind is not JSON: %q", d.Kind, d.Text)
			}
		case "text", "hex":
		default:
			t.Fatalf("kind %q", d.Kind)
		}
	})
}
