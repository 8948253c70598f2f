package conf

import (
	"testing"
	"time"
)

func TestChanges(t *testing.T) {
	var cs Changes
	Compare(&cs, Restart, "listen", "a:1", "a:1")
	Compare(&cs, Restart, "listen", "a:1", "a:2")
	Compare(&cs, Live, "retention", Duration(time.Hour), Duration(2*time.Hour))
	cs.Add(Live, "[1]", nil, "b/# → s", "")
	cs.Add(Kept, "", "old", nil, "data stays")
	cs.Add(Live, "x", "", "y", "")
	var all Changes
	all.Nest("mqtt", cs[:1])
	all.Nest("streams[0]", cs[1:2])
	all.Nest("routes", cs[2:3])
	all.Nest("streams", cs[3:])
	want := []string{
		"mqtt.listen: a:1 → a:2",
		"streams[0].retention: 1h → 2h",
		"routes[1]: added b/# → s",
		"streams: removed old (data stays)",
		`streams.x: "" → y`,
	}
	if len(all) != len(want) {
		t.Fatalf("changes = %+v", all)
	}
	for i, w := range want {
		if got := all[i].String(); got != w {
			t.Errorf("change %d = %q, want %q", i, got, w)
		}
	}
	if n := len(all.Only(Live)); n != 3 {
		t.Errorf("Only(Live) = %d", n)
	}
	if Restart.String() != "restart needed" || Kept.String() != "not applied" || Live.String() != "live" {
		t.Error("effect names")
	}
}

func TestDiffFields(t *testing.T) {
	type inner struct {
		Cert string `yaml:"cert_file"`
		Skip string `yaml:"-"`
	}
	type section struct {
		Listen  string   `yaml:"listen"`
		Wait    Duration `yaml:"wait"`
		TLS     inner    `yaml:"tls"`
		Hosts   []string `yaml:"hosts"`
		private int
	}
	a := section{Listen: "a:1", Wait: Duration(time.Second), TLS: inner{Cert: "x", Skip: "1"}, Hosts: []string{"h1", "h2"}, private: 1}
	b := section{Listen: "a:1", Wait: Duration(2 * time.Second), TLS: inner{Cert: "y", Skip: "2"}, Hosts: []string{"h1", "h3", "h4"}, private: 2}
	var cs Changes
	DiffFields(&cs, Restart, "mqtt", a, b)
	want := []string{"mqtt.wait: 1s → 2s", "mqtt.tls.cert_file: x → y", "mqtt.hosts[1]: h2 → h3", "mqtt.hosts[2]: added h4"}
	if len(cs) != len(want) {
		t.Fatalf("changes = %+v", cs)
	}
	for i, w := range want {
		if cs[i].String() != w || cs[i].Effect != Restart {
			t.Errorf("change %d = %q (%v), want %q", i, cs[i], cs[i].Effect, w)
		}
	}
}
