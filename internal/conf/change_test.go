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
