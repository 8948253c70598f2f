package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/payload"
)

func TestShippedScenariosLoad(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("scenarios: %v %v", files, err)
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if s.Name == "" || len(s.Config.Groups) == 0 {
			t.Errorf("%s: no name or groups", f)
		}
	}
	s, err := Load("../scenarios/sensors-and-cameras.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := s.Config.Groups
	if g[0].Count != 500 || g[0].Rate != 1 || g[1].Count != 20 || g[1].Payload != payload.Binary {
		t.Fatalf("groups %+v", g)
	}
	if g[1].Size.Min != 16<<10 || g[1].Size.Max != 128<<10 {
		t.Fatalf("camera size %+v", g[1].Size)
	}
	if e := s.Config.Events; len(e) != 1 || e[0].At != 30*time.Second || e[0].Jitter != 5*time.Second || e[0].Kind != "storm" {
		t.Fatalf("events %+v", e)
	}
	if !s.Config.CleanSession || s.Config.Duration != 90*time.Second {
		t.Fatalf("settings %+v", s.Config)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"empty", ``, []string{"x.yaml: empty file"}},
		{"unknown key", "groups:\n  - count: 1\n    colour: red\n", []string{`x.yaml:3: unknown key colour`}},
		{"unknown top key", "grops: []\n", []string{`x.yaml:1: unknown key grops`}},
		{"bare number duration", "duration: 30\ngroups: [{count: 1}]\n", []string{`x.yaml:1: "30" is not a duration`}},
		{"bad size", "groups:\n  - count: 1\n    size: 10-2\n", []string{`x.yaml:3:`, "max below min"}},
		{"wrong type", "groups:\n  - count: lots\n", []string{`x.yaml:2:`, `"lots"`}},
		{"no groups", "name: x\n", []string{"groups: at least one group"}},
		{"validation with lines", `
groups:
  - name: a
    count: 0
    rate: -2
    qos: 3
    payload: xml
    behaviour:
      slow: {fraction: 2, latency: 1s}
  - name: a
    count: 1
events:
  - at: 10s
    type: earthquake
    groups: [nope]
`, []string{
			"x.yaml:4: groups[0].count: must be at least 1",
			"x.yaml:5: groups[0].rate: must not be negative",
			"x.yaml:6: groups[0].qos: must be 0, 1 or 2",
			"x.yaml:7: groups[0].payload:",
			"x.yaml:9: groups[0].behaviour.slow.fraction: must be within 0..1",
			"x.yaml:10: groups[1].name: duplicate group name",
			"x.yaml:14: events[0].type: must be storm or outage",
			"x.yaml:15: events[0].groups: no group named \"nope\"",
		}},
		{"event after end", "duration: 10s\ngroups: [{count: 1}]\nevents: [{at: 20s, type: storm}]\n", []string{"events[0].at: 20s is not before the end of the run"}},
		{"offline every too short", "groups:\n  - count: 1\n    behaviour:\n      offline: {fraction: 1, every: 5s, for: 10s}\n", []string{"x.yaml:4: groups[0].behaviour.offline.every: must be longer than for"}},
		{"bad template", "groups:\n  - count: 1\n    topic: \"devices/{idd}\"\n", []string{"x.yaml:3: groups[0].topic:", "unknown placeholder {idd}"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.src))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDefaultsAndExplicitZeroes(t *testing.T) {
	s, err := Parse("x.yaml", []byte("groups:\n  - count: 2\n    qos: 0\n    jitter: 0\n  - count: 1\n    name: b\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := s.Config.Groups
	if g[0].QoS != 0 || g[0].Jitter >= 0 {
		t.Fatalf("explicit qos 0 / jitter 0 lost: %+v", g[0])
	}
	if g[1].QoS != 1 || g[1].Jitter != 0 {
		t.Fatalf("defaults: %+v", g[1])
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
