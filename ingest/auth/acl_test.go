package auth

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseACLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		line       int
		msg        string
	}{
		{"unknown directive", "user a\ntopics read x\n", 2, `unknown directive "topics"`},
		{"bad access word", "\n\ntopic rw a/b\n", 3, `unknown access "rw"`},
		{"access without filter", "pattern read\n", 1, `missing topic filter after "read"`},
		{"no filter", "topic\n", 1, "missing topic filter"},
		{"hash not last", "# c\ntopic read a/#/b\n", 2, "'#' must be the last level"},
		{"plus inside level", "topic write a+/b\n", 1, "'+' and '#' must fill a whole level"},
		{"hash inside level", "pattern write a/b#\n", 1, "'+' and '#' must fill a whole level"},
		{"user without name", "user\n", 1, "`user` needs a user name"},
		{"nul in filter", "topic a/\x00\n", 1, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseACL("acl", []byte(tc.file))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseACL: %v, want a *FileError", err)
			}
			if fe.File != "acl" || fe.Line != tc.line || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %q (line %d), want line %d and %q", err, fe.Line, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "acl:"+strconv.Itoa(tc.line)+": ") {
				t.Fatalf("message %q does not start with FILE:LINE", err)
			}
		})
	}
}

func TestParseACLReportsEveryBadLine(t *testing.T) {
	_, err := ParseACL("f", []byte("topic a/#/b\nuser x\ntopic read ok\nbogus\n"))
	got := err.Error()
	if !strings.Contains(got, "f:1: ") || !strings.Contains(got, "f:4: ") || strings.Count(got, "\n") != 1 {
		t.Fatalf("want errors for lines 1 and 4, got %q", got)
	}
}

const testACL = `
# anonymous clients: only $SYS uptime
topic read $SYS/broker/uptime

user alice
  topic readwrite alice/#
  topic deny alice/secret
  topic write shared/in
  topic read with space/x y

user admin
topic read #
topic read $SYS/#

user bob
topic read alice/public

pattern write devices/%u/#
pattern read devices/%u/cmd/#
pattern readwrite clients/%c/+
pattern read dev-%c/status
pattern deny devices/%u/locked
`

func mustACL(t testing.TB, text string) *ACL {
	t.Helper()
	a, err := ParseACL("acl", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestACLChecks(t *testing.T) {
	a := mustACL(t, testACL)
	type op int
	const (
		pub op = iota
		sub
		recv
	)
	for _, tc := range []struct {
		user, client string
		op           op
		s            string
		want         bool
	}{
		// user section, deny first
		{"alice", "c1", pub, "alice/x", true},
		{"alice", "c1", pub, "alice", true}, // '#' matches the parent level
		{"alice", "c1", pub, "alice/secret", false},
		{"alice", "c1", recv, "alice/secret", false},
		{"alice", "c1", recv, "alice/secret/sub", true}, // deny is exact
		{"alice", "c1", sub, "alice/#", true},           // deny narrower than the subscription: per message
		{"alice", "c1", sub, "alice/secret", false},
		{"alice", "c1", sub, "alice/+", true},
		{"alice", "c1", pub, "shared/in", true},
		{"alice", "c1", recv, "shared/in", false}, // write only
		{"alice", "c1", sub, "shared/in", false},
		{"alice", "c1", recv, "with space/x y", true},
		// default deny
		{"alice", "c1", pub, "bob/x", false},
		{"bob", "c2", pub, "alice/public", false},
		{"bob", "c2", recv, "alice/public", true},
		{"bob", "c2", sub, "alice/#", false}, // a narrower read rule does not cover it
		{"carol", "c3", pub, "anything", false},
		// # and + never reach $ topics
		{"admin", "a", recv, "$SYS/broker/load", true},
		{"admin", "a", sub, "$SYS/#", true},
		{"admin", "a", sub, "#", true},
		{"admin", "a", recv, "x/y", true},
		{"alice", "c1", sub, "$SYS/#", false},
		// anonymous section
		{"", "anon", recv, "$SYS/broker/uptime", true},
		{"", "anon", sub, "$SYS/broker/uptime", true},
		{"", "anon", sub, "$SYS/broker/+", false},
		{"", "anon", recv, "$SYS/broker/load", false},
		// %u patterns
		{"d1", "c9", pub, "devices/d1/telemetry", true},
		{"d1", "c9", pub, "devices/d2/telemetry", false},
		{"d1", "c9", pub, "devices/d1/locked", false}, // pattern deny
		{"d1", "c9", sub, "devices/d1/cmd/#", true},
		{"d1", "c9", sub, "devices/d1/#", false}, // read only on cmd/
		{"d1", "c9", sub, "devices/+/cmd/#", false},
		{"", "c9", pub, "devices//telemetry", false}, // %u never matches anonymous
		{"a+", "c9", pub, "devices/a+/x", false},     // wildcard in the user name: no match
		{"+", "c9", sub, "devices/+/cmd/#", false},
		{"a/b", "c9", pub, "devices/a/b/x", false},
		// %c patterns, also for anonymous clients
		{"", "c7", pub, "clients/c7/state", true},
		{"", "c7", sub, "clients/c7/+", true},
		{"", "c7", sub, "clients/c7/#", false},
		{"", "c7", pub, "clients/c8/state", false},
		{"", "#", sub, "clients/#", false},
		{"", "+", sub, "clients/+/+", false},
		{"x", "c7", recv, "dev-c7/status", true},
		{"x", "c7", recv, "dev-c8/status", false},
		{"x", "", recv, "dev-/status", false}, // empty client id matches nothing
	} {
		var got bool
		var name string
		switch tc.op {
		case pub:
			got, name = a.CanPublish(tc.user, tc.client, tc.s), "CanPublish"
		case sub:
			got, name = a.CanSubscribe(tc.user, tc.client, tc.s), "CanSubscribe"
		case recv:
			got, name = a.CanReceive(tc.user, tc.client, tc.s), "CanReceive"
		}
		if got != tc.want {
			t.Errorf("%s(%q, %q, %q) = %v, want %v", name, tc.user, tc.client, tc.s, got, tc.want)
		}
	}
}

func TestACLWithoutSectionsDeniesAll(t *testing.T) {
	a := mustACL(t, "# nothing granted\n")
	if a.CanPublish("u", "c", "a") || a.CanSubscribe("", "c", "#") || a.CanReceive("u", "c", "a") {
		t.Fatal("an empty ACL granted something")
	}
}

func TestFilterCovers(t *testing.T) {
	for _, tc := range []struct {
		rule, sub string
		want      bool
	}{
		{"a/#", "a/+/b", true},
		{"a/#", "a", true},
		{"a/#", "a/#", true},
		{"a/+", "a/#", false},
		{"a/+", "a/+", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/b", "a/+", false},
		{"+/b", "a/b", true},
		{"+/+", "+/b", true},
		{"#", "#", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/+", true},
		{"a/+/#", "a/#", false},
		{"a/b/#", "a/b", true},
		{"a//b", "a//b", true},
		{"a//b", "a/+/b", false},
		{"#", "a/#/b", false}, // invalid subscriptions cover nothing
		{"#", "a/b+", false},
		{"a/b", "a/b+", false},
		{"#", "", false},
	} {
		f, err := parseFilter(tc.rule, false)
		if err != nil {
			t.Fatal(err)
		}
		sb := newSubst("", "")
		if got := f.covers(tc.sub, &sb); got != tc.want {
			t.Errorf("%q covers %q = %v, want %v", tc.rule, tc.sub, got, tc.want)
		}
	}
}

func TestTopicLinesDoNotSubstitute(t *testing.T) {
	a := mustACL(t, "user u1\ntopic write x/%u\n")
	if a.CanPublish("u1", "c", "x/u1") || !a.CanPublish("u1", "c", "x/%u") {
		t.Fatal("a topic line substituted %u; only pattern lines do, as in Mosquitto")
	}
}

func TestACLCheckDoesNotAllocate(t *testing.T) {
	a := mustACL(t, testACL)
	allocs := testing.AllocsPerRun(100, func() {
		a.CanPublish("d1", "c9", "devices/d1/telemetry")
		a.CanSubscribe("alice", "c1", "alice/+")
		a.CanReceive("", "c7", "clients/c7/state")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per check", allocs)
	}
}
