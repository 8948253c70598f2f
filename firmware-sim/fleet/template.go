package fleet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadTemplate reports a malformed name template.
var ErrBadTemplate = errors.New("fleet: bad template")

// A template renders device names, client ids, topics and ledger keys.
// Placeholders:
//
//	{n}        device number within its group, from 1
//	{n:05}     the same, zero-padded to 5 digits (any width 1..20)
//	{i}        device number across the whole fleet, from 1 ({i:05} too)
//	{group}    group name
//	{id}       device name (not in the id template itself)
//	{client_id} MQTT client id (ledger key and topic only)
//
// "{{" and "}}" are literal braces.
type template struct {
	parts []tmplPart
}

type tmplPart struct {
	lit   string
	field string // "" for a literal
	width int
}

type tmplVars struct {
	n, i     int
	group    string
	id       string
	clientID string
}

func parseTemplate(s string, allowed ...string) (template, error) {
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return t, fmt.Errorf("%w %q: unmatched '}'", ErrBadTemplate, s)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return t, fmt.Errorf("%w %q: unclosed '{'", ErrBadTemplate, s)
			}
			name := s[i+1 : i+end]
			width := 0
			if k := strings.IndexByte(name, ':'); k >= 0 {
				w, err := strconv.Atoi(name[k+1:])
				if err != nil || w < 1 || w > 20 || (name[:k] != "n" && name[:k] != "i") {
					return t, fmt.Errorf("%w %q: bad width in {%s} (use {n:05})", ErrBadTemplate, s, name)
				}
				width, name = w, name[:k]
			}
			ok := false
			for _, a := range allowed {
				ok = ok || a == name
			}
			if !ok {
				return t, fmt.Errorf("%w %q: unknown placeholder {%s} (allowed: {%s})", ErrBadTemplate, s, name, strings.Join(allowed, "} {"))
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, tmplPart{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, tmplPart{field: name, width: width})
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, tmplPart{lit: lit.String()})
	}
	return t, nil
}

func (t template) render(v tmplVars) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.field {
		case "":
			b.WriteString(p.lit)
		case "n", "i":
			num := v.n
			if p.field == "i" {
				num = v.i
			}
			s := strconv.Itoa(num)
			for k := len(s); k < p.width; k++ {
				b.WriteByte('0')
			}
			b.WriteString(s)
		case "group":
			b.WriteString(v.group)
		case "id":
			b.WriteString(v.id)
		case "client_id":
			b.WriteString(v.clientID)
		}
	}
	return b.String()
}

// uses reports whether the template mentions the placeholder.
func (t template) uses(field string) bool {
	for _, p := range t.parts {
		if p.field == field {
			return true
		}
	}
	return false
}
