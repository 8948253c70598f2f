package auth

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParsePasswords(f *testing.F) {
	f.Add([]byte("d1:$7$101$Kz9PEZohODGvSxcp$vu6d7dYvym7aWN7n22uyAQ7Y36U/oRH2g0VinY3/e0fdtNwmuXTOcvlhgADiPe+IL6skS1PcwxJTbNbdM/aOIg==\n"))
	f.Add([]byte("# c\n\nu:$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"))
	f.Add([]byte("u:$6$c2FsdA==$AAAA\nu:plain\n:x\nnocolon\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePasswords("f", data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || fe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			if p != nil {
				t.Fatal("passwords returned with an error")
			}
			return
		}
		for u := range p.users {
			if u == "" || strings.Contains(u, ":") {
				t.Fatalf("user %q accepted", u)
			}
		}
		// Verification is not run: a fuzzed file may ask for large costs
		// within the limits, and the suite runs 200,000 inputs.
	})
}

func FuzzParseACL(f *testing.F) {
	f.Add([]byte(testACL))
	f.Add([]byte("topic rw a b\nuser\npattern deny a/#/b\nbogus x\n"))
	f.Add([]byte("pattern read %c/%u/x%cy/#\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseACL("f", data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || fe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		// An anonymous client with no usable client id can only be
		// granted by plain rules; any check must not panic.
		a.CanPublish("", "", "a/b")
		a.CanSubscribe("u", "c", "#")
		a.CanReceive("u", "c", "$SYS/x")
	})
}

// FuzzACLMatch compares the matcher with a reference that substitutes
// %u/%c into the rule's text and matches split strings, and checks that
// covers never grants a subscription that can deliver a topic the rule
// does not match.
func FuzzACLMatch(f *testing.F) {
	f.Add("devices/%u/#", "devices/d1/t", "d1", "c1")
	f.Add("+/%c/x", "$SYS/c1/x", "", "c1")
	f.Add("a/#", "a/+/b", "u", "c")
	f.Add("dev-%c/+", "dev-c/#", "", "c")
	f.Add("#", "$x/#", "u", "+")
	f.Fuzz(func(t *testing.T, rule, s, user, client string) {
		fl, err := parseFilter(rule, true)
		if err != nil || len(s) > 256 || len(rule) > 256 {
			return
		}
		sb := newSubst(user, client)
		if !strings.ContainsAny(s, "+#") {
			if got, want := fl.matchTopic(s, &sb), refMatch(rule, s, user, client); got != want {
				t.Fatalf("rule %q topic %q user %q client %q: matchTopic %v, reference %v", rule, s, user, client, got, want)
			}
		}
		if !fl.covers(s, &sb) {
			return
		}
		for _, topic := range instances(s) {
			if !refMatch(rule, topic, user, client) {
				t.Fatalf("rule %q covers %q (user %q client %q) but not its topic %q", rule, s, user, client, topic)
			}
		}
	})
}

// refMatch is the plain MQTT topic match with string substitution.
func refMatch(rule, topic, user, client string) bool {
	if topic == "" {
		return false
	}
	parts := strings.Split(rule, "/")
	for i, p := range parts {
		if strings.Contains(p, "%u") || strings.Contains(p, "%c") {
			if i == 0 && topic[0] == '$' {
				return false
			}
			if (strings.Contains(p, "%u") && !usable(user)) || (strings.Contains(p, "%c") && !usable(client)) {
				return false
			}
			p = strings.ReplaceAll(p, "%u", "\x00u")
			p = strings.ReplaceAll(p, "%c", "\x00c")
			p = strings.ReplaceAll(p, "\x00u", user)
			parts[i] = strings.ReplaceAll(p, "\x00c", client)
		}
	}
	if topic[0] == '$' && (parts[0] == "+" || parts[0] == "#") {
		return false
	}
	t := strings.Split(topic, "/")
	for i, p := range parts {
		if p == "#" {
			return true
		}
		if i >= len(t) || (p != "+" && p != t[i]) {
			return false
		}
	}
	return len(parts) == len(t)
}

// instances returns topics a subscription filter matches: each '+'
// becomes "x", "" or "$x" and '#' becomes nothing (the parent), "y" or
// "y/z".
func instances(filter string) []string {
	var out []string
	for v := range 3 {
		levels := strings.Split(filter, "/")
		for i, l := range levels {
			switch l {
			case "+":
				levels[i] = []string{"x", "", "$x"}[v]
			case "#":
				levels[i] = []string{"", "y", "y/z"}[v]
			}
		}
		t := strings.Join(levels, "/")
		if strings.HasSuffix(filter, "/#") && v == 0 {
			t = strings.TrimSuffix(t, "/")
		}
		wildFirst := filter[0] == '+' || filter[0] == '#'
		if t != "" && !(wildFirst && t[0] == '$') {
			out = append(out, t) // a filter starting with a wildcard matches no '$' topic
		}
	}
	return out
}
