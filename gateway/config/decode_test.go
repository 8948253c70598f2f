package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// YAML itself is yaml.v3's: these files are valid or invalid because of
// aliases, merge keys and duplicate keys, and must be taken or refused
// with the line of the problem.
func TestDecodeYAMLFeatures(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // nil: accepted
	}{
		{"alias_of_a_section", "data_dir: x\nx-log: &l {level: debug}\nlog: *l\n",
			[]string{`weir.yaml:2: x-log: unknown key "x-log", did you mean "log"?`}},
		{"merge_list_first_wins", validBase + "    <<: [{partition_key: a}, {partition_key: b}]\n", nil},
		{"explicit_key_beats_merge", "data_dir: x\nlog:\n  <<: {level: warn, format: json}\n  level: debug\n", nil},
		{"merge_of_a_scalar", "data_dir: x\nlog:\n  <<: 3\n",
			[]string{"weir.yaml:3: log: yaml: map merge requires map or sequence of maps as the value"}},
		{"list_as_key", "data_dir: x\nlog:\n  [a]: 1\n",
			[]string{`weir.yaml:3: log: keys must be plain names, got a list`}},
		{"duplicate_nested_key", "data_dir: x\nlog:\n  level: info\n  level: warn\n",
			[]string{`weir.yaml:4: log.level: duplicate key (first at line 3)`}},
		{"alias_to_its_own_list", "data_dir: x\nstreams: &s\n  - *s\n",
			[]string{`weir.yaml:3: streams[0]: must be a mapping of keys (key: value), got a list`}},
		{"integer_out_of_range", "data_dir: x\nstreams:\n  - name: a\n    shards: 99999999999\n",
			[]string{`weir.yaml:4: streams[0].shards: integer 99999999999 out of range`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("weir.yaml", []byte(tc.yaml))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	f, err := Parse("weir.yaml", []byte("data_dir: x\nlog:\n  <<: {level: warn, format: json}\n  level: debug\n"))
	if err != nil || f.Log != (Log{Level: "debug", Format: "json"}) || f.Line("log.format") != 3 || f.Line("log.level") != 4 {
		t.Fatalf("merge: %+v, %v, lines %v", f, err, f.src.lines)
	}
}

// Sections other packages add are plain structs; the decoder must take
// every shape they use (pointers, maps, lists of structs, inline structs,
// numbers) by reflection alone.
func TestDecodeShapes(t *testing.T) {
	type inner struct {
		Name string  `yaml:"name"`
		Rate float64 `yaml:"rate"`
	}
	type common struct {
		Enabled bool `yaml:"enabled"`
	}
	type section struct {
		common `yaml:",inline"`
		TLS    *inner            `yaml:"tls"`
		Users  map[string]inner  `yaml:"users"`
		Lists  []inner           `yaml:"listeners"`
		Tags   map[string]string `yaml:"tags"`
		Port   uint16            `yaml:"port"`
	}
	src := "enabled: true\ntls: {name: a, rate: 1.5}\nusers:\n  bob: {name: b}\nlisteners:\n  - name: c\n    rate: 2\ntags: {k: v}\nport: 8883\n"
	d := &decoder{file: "t.yaml", lines: map[string]int{}, bad: map[string]bool{}}
	root := d.document([]byte(src))
	var got section
	d.decode(root, reflect.ValueOf(&got).Elem(), "")
	if len(d.errs) > 0 {
		t.Fatalf("errors: %v", d.errs)
	}
	want := section{common: common{Enabled: true}, TLS: &inner{Name: "a", Rate: 1.5},
		Users: map[string]inner{"bob": {Name: "b"}}, Lists: []inner{{Name: "c", Rate: 2}},
		Tags: map[string]string{"k": "v"}, Port: 8883}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if d.lines["users.bob"] != 4 || d.lines["listeners[0].rate"] != 7 || d.lines["enabled"] != 1 {
		t.Fatalf("lines %v", d.lines)
	}
	d = &decoder{file: "t.yaml", lines: map[string]int{}, bad: map[string]bool{}}
	d.decode(d.document([]byte("port: 70000\ntls: {nme: a}\n")), reflect.ValueOf(&got).Elem(), "")
	if msg := d.errs.Error(); msg != "t.yaml:1: port: integer 70000 out of range\nt.yaml:2: tls.nme: unknown key \"nme\", did you mean \"name\"?" {
		t.Fatalf("errors:\n%s", msg)
	}
}

// FuzzParse: whatever the bytes, Parse returns a File or Errors, never
// panics or hangs, and every error names the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(issue2Minimum))
	f.Add([]byte(validBase + "forwarders:\n  - {stream: telemetry, target_stream: up, region: r}\n"))
	f.Add([]byte("a: &a [*a]\nb: *a\n"))
	f.Add([]byte("log:\n  <<: [{level: warn}, *x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.yaml", data)
		if (file == nil) == (err == nil) {
			t.Fatalf("Parse returned %v and %v", file, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}
