package ingest

import (
	"errors"
	"testing"
)

func TestKeyTemplateExecute(t *testing.T) {
	tests := []struct {
		name     string
		tmpl     string
		topic    string
		client   string
		user     string
		identity string
		payload  string
		want     string
		unresolv bool
	}{
		{name: "client_id", tmpl: "{client_id}", topic: "a/b", client: "dev-1", want: "dev-1"},
		{name: "username", tmpl: "{username}", client: "c", user: "alice", want: "alice"},
		{name: "topic_level_1", tmpl: "{topic.1}", topic: "devices/d42/telemetry", want: "d42"},
		{name: "topic_level_0", tmpl: "{topic.0}", topic: "devices/d42/telemetry", want: "devices"},
		{name: "topic_last_level", tmpl: "{topic.2}", topic: "devices/d42/telemetry", want: "telemetry"},
		{name: "topic_missing_level", tmpl: "{topic.3}", topic: "devices/d42/telemetry", unresolv: true},
		{name: "topic_empty_level", tmpl: "{topic.1}", topic: "a//b", unresolv: true},
		{name: "literal_mix", tmpl: "site-{topic.1}:{client_id}", topic: "x/y", client: "c1", want: "site-y:c1"},
		{name: "escaped_braces", tmpl: "{{{client_id}}}", client: "c1", want: "{c1}"},
		{name: "literal_only", tmpl: "fixed", want: "fixed"},
		{name: "payload_string", tmpl: "{payload.device.id}", payload: `{"device":{"id":"d7"}}`, want: "d7"},
		{name: "payload_number", tmpl: "{payload.n}", payload: `{"n":12345678901234567890}`, want: "12345678901234567890"},
		{name: "payload_bool", tmpl: "{payload.ok}", payload: `{"ok":true}`, want: "true"},
		{name: "payload_array_index", tmpl: "{payload.r.1.id}", payload: `{"r":[{"id":"a"},{"id":"b"}]}`, want: "b"},
		{name: "payload_with_topic", tmpl: "{topic.0}/{payload.id}", topic: "t/x", payload: `{"id":"p"}`, want: "t/p"},
		{name: "payload_missing", tmpl: "{payload.id}", payload: `{"other":1}`, unresolv: true},
		{name: "payload_null", tmpl: "{payload.id}", payload: `{"id":null}`, unresolv: true},
		{name: "payload_object", tmpl: "{payload.id}", payload: `{"id":{"x":1}}`, unresolv: true},
		{name: "payload_not_json", tmpl: "{payload.id}", payload: `\x01\x02`, unresolv: true},
		{name: "payload_through_scalar", tmpl: "{payload.a.b}", payload: `{"a":1}`, unresolv: true},
		{name: "payload_index_out_of_range", tmpl: "{payload.r.5}", payload: `{"r":[1]}`, unresolv: true},
		{name: "empty_username", tmpl: "{username}", client: "c", unresolv: true},
		{name: "empty_composite", tmpl: "{username}{client_id}", unresolv: true},
		{name: "identity", tmpl: "{identity}", client: "c", user: "u", identity: "dev-7.example", want: "dev-7.example"},
		{name: "identity_in_composite", tmpl: "site/{identity}/{topic.1}", topic: "a/b", identity: "d7", want: "site/d7/b"},
		// An anonymous client has no identity: even in a composite key
		// that would otherwise render, the record is refused.
		{name: "identity_anonymous", tmpl: "{identity}", client: "c", user: "u", unresolv: true},
		{name: "identity_anonymous_composite", tmpl: "{client_id}-{identity}", client: "c", unresolv: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kt, err := ParseKeyTemplate(tc.tmpl)
			if err != nil {
				t.Fatalf("ParseKeyTemplate(%q): %v", tc.tmpl, err)
			}
			got, err := kt.Execute(tc.topic, tc.client, tc.user, tc.identity, []byte(tc.payload))
			if tc.unresolv {
				if !errors.Is(err, ErrKeyUnresolved) {
					t.Fatalf("Execute = %q, %v; want ErrKeyUnresolved", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Execute = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseKeyTemplateErrors(t *testing.T) {
	tests := []struct {
		name   string
		tmpl   string
		offset int
		msg    string
	}{
		{"empty", "", 0, "must not be empty; use e.g. {client_id} or {topic.1}"},
		{"unknown", "x-{device}", 2, "unknown placeholder {device}; use {topic.N}, {client_id}, {username}, {identity} or {payload.PATH}"},
		{"empty_placeholder", "{}", 0, "empty placeholder {}; use {topic.N}, {client_id}, {username}, {identity} or {payload.PATH}"},
		{"unclosed", "{client_id", 0, "unclosed '{' (write {{ for a literal brace)"},
		{"stray_close", "a}b", 1, "unmatched '}' (write }} for a literal brace)"},
		{"topic_not_number", "{topic.x}", 0, "{topic.x}: topic level must be a number from 0, e.g. {topic.1}"},
		{"topic_negative", "{topic.-1}", 0, "{topic.-1}: topic level must be a number from 0, e.g. {topic.1}"},
		{"payload_empty_segment", "{payload.a..b}", 0, "{payload.a..b}: payload path has an empty segment; write e.g. {payload.device.id}"},
		{"payload_no_path", "{payload.}", 0, "{payload.}: payload path has an empty segment; write e.g. {payload.device.id}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeyTemplate(tc.tmpl)
			var te *KeyTemplateError
			if !errors.As(err, &te) || !errors.Is(err, ErrBadKeyTemplate) {
				t.Fatalf("ParseKeyTemplate(%q) = %v; want *KeyTemplateError", tc.tmpl, err)
			}
			if te.Offset != tc.offset || te.Msg != tc.msg {
				t.Fatalf("got offset %d msg %q; want %d %q", te.Offset, te.Msg, tc.offset, tc.msg)
			}
		})
	}
}

func TestKeyTemplateString(t *testing.T) {
	kt, err := ParseKeyTemplate("{topic.1}-{payload.id}")
	if err != nil {
		t.Fatal(err)
	}
	if kt.String() != "{topic.1}-{payload.id}" || !kt.UsesPayload() || kt.UsesUsername() {
		t.Fatalf("String %q UsesPayload %v UsesUsername %v", kt.String(), kt.UsesPayload(), kt.UsesUsername())
	}
	if u, _ := ParseKeyTemplate("u-{username}"); !u.UsesUsername() || u.UsesPayload() {
		t.Fatal("UsesUsername/UsesPayload for u-{username}")
	}
	var zero KeyTemplate
	if _, err := zero.Execute("a", "b", "c", "", nil); !errors.Is(err, ErrKeyUnresolved) {
		t.Fatalf("zero template: %v", err)
	}
}

func BenchmarkKeyTemplate(b *testing.B) {
	for _, bc := range []struct{ name, tmpl string }{
		{"client_id", "{client_id}"},
		{"topic", "{topic.1}"},
		{"payload", "{payload.device.id}"},
	} {
		kt, err := ParseKeyTemplate(bc.tmpl)
		if err != nil {
			b.Fatal(err)
		}
		payload := []byte(`{"device":{"id":"d7"},"temp":21.5,"hum":40}`)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kt.Execute("devices/d7/telemetry", "d7", "u", "", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
