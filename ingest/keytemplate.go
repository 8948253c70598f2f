package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Key template errors. Parse problems are *KeyTemplateError values that
// unwrap to ErrBadKeyTemplate; a template that cannot be rendered for one
// publish returns an error wrapping ErrKeyUnresolved, which the publish path
// refuses (the record has no key to be stored under).
var (
	ErrBadKeyTemplate = errors.New("ingest: invalid partition key template")
	ErrKeyUnresolved  = errors.New("ingest: partition key cannot be resolved")
)

// KeyTemplateError says what is wrong with a partition_key template and
// where (byte offset).
type KeyTemplateError struct {
	Template string
	Offset   int
	Msg      string
}

func (e *KeyTemplateError) Error() string {
	return fmt.Sprintf("ingest: partition key template %q at byte %d: %s", e.Template, e.Offset, e.Msg)
}

// Unwrap makes errors.Is(err, ErrBadKeyTemplate) true.
func (e *KeyTemplateError) Unwrap() error { return ErrBadKeyTemplate }

// KeyTemplate is a parsed partition_key: literal text and placeholders
//
//	{topic.N}       topic level N, 0-based ("devices/d1/telemetry": {topic.1} = d1)
//	{client_id}     the MQTT client id
//	{username}      the CONNECT username
//	{identity}      who the client proved to be at CONNECT: its client
//	                certificate's identity or its password-checked user
//	                name; an anonymous client has none, and its publishes
//	                are refused as unresolved
//	{payload.PATH}  a scalar at a dotted path in a JSON payload; a numeric
//	                segment indexes an array ({payload.readings.0.id})
//
// "{{" and "}}" stand for literal braces. It is parsed once per route and
// rendered per publish, so rendering only walks the prepared parts.
type KeyTemplate struct {
	src     string
	parts   []ktPart
	payload bool // some part needs the decoded payload
}

type ktKind uint8

const (
	ktLiteral ktKind = iota
	ktTopic
	ktClientID
	ktUsername
	ktPayload
	ktIdentity
)

type ktPart struct {
	kind  ktKind
	lit   string   // ktLiteral
	level int      // ktTopic
	path  []string // ktPayload
}

// ParseKeyTemplate parses a partition_key template.
func ParseKeyTemplate(s string) (KeyTemplate, error) {
	t := KeyTemplate{src: s}
	fail := func(off int, format string, args ...any) (KeyTemplate, error) {
		return KeyTemplate{}, &KeyTemplateError{Template: s, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail(0, "must not be empty; use e.g. {client_id} or {topic.1}")
	}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, ktPart{kind: ktLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '{' && strings.HasPrefix(s[i:], "{{"):
			lit.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(s[i:], "}}"):
			lit.WriteByte('}')
			i += 2
		case c == '}':
			return fail(i, "unmatched '}' (write }} for a literal brace)")
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return fail(i, "unclosed '{' (write {{ for a literal brace)")
			}
			name := s[i+1 : i+1+end]
			p, msg := parseKTPlaceholder(name)
			if msg != "" {
				return fail(i, "%s", msg)
			}
			flush()
			t.parts = append(t.parts, p)
			t.payload = t.payload || p.kind == ktPayload
			i += end + 2
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return t, nil
}

func parseKTPlaceholder(name string) (ktPart, string) {
	const known = "use {topic.N}, {client_id}, {username}, {identity} or {payload.PATH}"
	switch {
	case name == "client_id":
		return ktPart{kind: ktClientID}, ""
	case name == "identity":
		return ktPart{kind: ktIdentity}, ""
	case name == "username":
		return ktPart{kind: ktUsername}, ""
	case strings.HasPrefix(name, "topic."):
		n, err := strconv.Atoi(name[len("topic."):])
		if err != nil || n < 0 || n > 65535 || strings.HasPrefix(name[len("topic."):], "+") {
			return ktPart{}, fmt.Sprintf("{%s}: topic level must be a number from 0, e.g. {topic.1}", name)
		}
		return ktPart{kind: ktTopic, level: n}, ""
	case strings.HasPrefix(name, "payload."):
		path := strings.Split(name[len("payload."):], ".")
		for _, seg := range path {
			if seg == "" {
				return ktPart{}, fmt.Sprintf("{%s}: payload path has an empty segment; write e.g. {payload.device.id}", name)
			}
		}
		return ktPart{kind: ktPayload, path: path}, ""
	case name == "":
		return ktPart{}, "empty placeholder {}; " + known
	default:
		return ktPart{}, fmt.Sprintf("unknown placeholder {%s}; %s", name, known)
	}
}

// String returns the template as written.
func (t KeyTemplate) String() string { return t.src }

// UsesPayload reports whether rendering decodes the payload as JSON, which
// is the expensive part of a key.
func (t KeyTemplate) UsesPayload() bool { return t.payload }

// UsesUsername reports whether rendering needs the CONNECT username, so a
// caller can skip converting it (an allocation) for templates that do not.
func (t KeyTemplate) UsesUsername() bool {
	for _, p := range t.parts {
		if p.kind == ktUsername {
			return true
		}
	}
	return false
}

// Execute renders the key for one publish. It fails, wrapping
// ErrKeyUnresolved, when the topic has no such level, the payload is not
// JSON or lacks the field (or it is not a string, number or bool), the
// template needs an identity and the client is anonymous (identity ""),
// or the result is empty.
func (t KeyTemplate) Execute(topic string, clientID, username, identity string, payload []byte) (string, error) {
	if len(t.parts) == 0 {
		return "", fmt.Errorf("%w: empty template", ErrKeyUnresolved)
	}
	if len(t.parts) == 1 && !t.payload {
		// The common templates ({client_id}, {topic.1}) need no builder.
		s, err := t.render(t.parts[0], topic, clientID, username, identity, nil)
		if err == nil && s == "" {
			err = fmt.Errorf("%w: %q renders an empty key", ErrKeyUnresolved, t.src)
		}
		return s, err
	}
	var doc any
	if t.payload {
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return "", fmt.Errorf("%w: %q needs a JSON payload: %v", ErrKeyUnresolved, t.src, err)
		}
	}
	var b strings.Builder
	for _, p := range t.parts {
		s, err := t.render(p, topic, clientID, username, identity, doc)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("%w: %q renders an empty key", ErrKeyUnresolved, t.src)
	}
	return b.String(), nil
}

func (t KeyTemplate) render(p ktPart, topic, clientID, username, identity string, doc any) (string, error) {
	switch p.kind {
	case ktLiteral:
		return p.lit, nil
	case ktIdentity:
		if identity == "" {
			return "", fmt.Errorf("%w: %q needs the client's identity and the client is anonymous", ErrKeyUnresolved, t.src)
		}
		return identity, nil
	case ktClientID:
		return clientID, nil
	case ktUsername:
		return username, nil
	case ktTopic:
		rest := topic
		for range p.level {
			i := strings.IndexByte(rest, '/')
			if i < 0 {
				return "", fmt.Errorf("%w: topic %q has no level %d", ErrKeyUnresolved, topic, p.level)
			}
			rest = rest[i+1:]
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		return rest, nil
	case ktPayload:
		return payloadScalar(doc, p.path)
	}
	return "", fmt.Errorf("%w: bad template part", ErrKeyUnresolved)
}

func payloadScalar(doc any, path []string) (string, error) {
	v := doc
	for i, seg := range path {
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[seg]
			if !ok {
				return "", fmt.Errorf("%w: payload has no field %s", ErrKeyUnresolved, strings.Join(path[:i+1], "."))
			}
			v = next
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(cur) {
				return "", fmt.Errorf("%w: payload has no element %s", ErrKeyUnresolved, strings.Join(path[:i+1], "."))
			}
			v = cur[n]
		default:
			return "", fmt.Errorf("%w: payload field %s is not an object or array", ErrKeyUnresolved, strings.Join(path[:i], "."))
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", fmt.Errorf("%w: payload field %s is null", ErrKeyUnresolved, strings.Join(path, "."))
	default:
		return "", fmt.Errorf("%w: payload field %s is not a string, number or bool", ErrKeyUnresolved, strings.Join(path, "."))
	}
}
