package console

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Decoded is a payload as the record browser shows it.
type Decoded struct {
	// Kind is "json" (pretty-printed), "cbor" (shown as JSON), "text"
	// (printable UTF-8) or "hex".
	Kind string `json:"kind"`
	Text string `json:"text"`
	// Truncated is set when only the first maxShown bytes were decoded.
	Truncated bool `json:"truncated,omitempty"`
	Size      int  `json:"size"`
}

// maxShown bounds what one record costs the browser and the gateway:
// payloads may be up to 1 MiB; past this the first bytes are shown.
const maxShown = 16 << 10

// cborMode decodes untrusted bytes with small limits, so a hostile
// payload costs little.
var cborMode, _ = cbor.DecOptions{
	MaxNestedLevels:  16,
	MaxArrayElements: 4096,
	MaxMapPairs:      4096,
	IndefLength:      cbor.IndefLengthAllowed,
	DupMapKey:        cbor.DupMapKeyQuiet,
	DefaultMapType:   nil,
}.DecMode()

// DecodePayload decides how to show a payload: JSON pretty, CBOR as JSON,
// printable text as is, anything else in hex. It never fails.
func DecodePayload(b []byte) Decoded {
	d := Decoded{Size: len(b)}
	if len(b) > maxShown {
		b, d.Truncated = b[:maxShown], true
	}
	// json.Valid lets invalid UTF-8 through inside strings; the page needs
	// text it can show, so such a payload is shown as hex instead.
	if !d.Truncated && utf8.Valid(b) && json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			d.Kind, d.Text = "json", out.String()
			return d
		}
	}
	if printable(b) {
		d.Kind, d.Text = "text", string(b)
		return d
	}
	// A single byte is a valid CBOR integer or simple value; calling it
	// CBOR would hide a one-byte binary payload.
	if !d.Truncated && len(b) >= 2 {
		var v any
		if cborMode.Unmarshal(b, &v) == nil {
			if j, err := json.MarshalIndent(jsonable(v, 0), "", "  "); err == nil {
				d.Kind, d.Text = "cbor", string(j)
				return d
			}
		}
	}
	d.Kind, d.Text = "hex", hexDump(b)
	return d
}

// printable is valid UTF-8 made of printing characters and white space.
func printable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// jsonable turns what CBOR decodes to into what encoding/json takes: map
// keys become strings, byte strings base64, tags their content, and
// floats JSON has no word for become strings.
func jsonable(v any, depth int) any {
	if depth > 32 {
		return "…"
	}
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(jsonable(k, depth+1))] = jsonable(e, depth+1)
		}
		return m
	case []any:
		for i := range t {
			t[i] = jsonable(t[i], depth+1)
		}
		return t
	case []byte:
		return "base64:" + base64.StdEncoding.EncodeToString(t)
	case cbor.Tag:
		return map[string]any{"tag": t.Number, "value": jsonable(t.Content, depth+1)}
	case cbor.RawTag:
		return map[string]any{"tag": t.Number, "value": "hex:" + hex.EncodeToString(t.Content)}
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Sprint(t)
		}
	case float32:
		if f := float64(t); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
	case cbor.SimpleValue:
		return fmt.Sprintf("simple(%d)", t)
	}
	return v
}

// hexDump is 16 bytes a line with the offset, as hexdump -C without the
// text column (the text was not printable).
func hexDump(b []byte) string {
	var out bytes.Buffer
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		fmt.Fprintf(&out, "%08x  % x\n", off, line)
	}
	return out.String()
}
