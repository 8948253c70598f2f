package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Access is what a rule grants: Read (subscribe and receive), Write
// (publish), or both.
type Access uint8

// Access bits.
const (
	Read Access = 1 << iota
	Write
)

type rule struct {
	f      filter
	access Access // granted; 0 on a deny rule
}

// ruleSet holds one section's rules, deny rules apart because they are
// checked first.
type ruleSet struct {
	deny, grant []rule
}

func (r *ruleSet) add(x rule, deny bool) {
	if deny {
		r.deny = append(r.deny, x)
	} else {
		r.grant = append(r.grant, x)
	}
}

// ACL is a parsed acl_file. It is immutable. A check consults only the
// rules of the client's own user section (one map lookup) and the
// patterns, so its cost does not grow with the number of users.
type ACL struct {
	anonymous ruleSet             // topic lines before the first user line
	users     map[string]*ruleSet // topic lines under "user NAME"
	patterns  ruleSet             // pattern lines, for every client
}

// LoadACL reads and parses an ACL file.
func LoadACL(path string) (*ACL, error) {
	_, v, err := loadFile(path, ParseACL)
	return v, err
}

// ParseACL parses an ACL file in Mosquitto's acl_file syntax; name is
// used in errors. Every bad line is reported as a *FileError.
func ParseACL(name string, data []byte) (*ACL, error) {
	a := &ACL{users: map[string]*ruleSet{}}
	fe := fileErrors{name: name}
	section := &a.anonymous
	forEachLine(data, func(n int, line string) {
		directive, rest := cutWord(line)
		switch directive {
		case "user":
			if rest == "" {
				fe.add(n, errors.New("`user` needs a user name"))
				return
			}
			// Repeated sections of one user add up, as in Mosquitto.
			s := a.users[rest]
			if s == nil {
				s = &ruleSet{}
				a.users[rest] = s
			}
			section = s
		case "topic", "pattern":
			pattern := directive == "pattern"
			r, deny, err := parseRule(rest, pattern)
			if err != nil {
				fe.add(n, fmt.Errorf("%s: %w", directive, err))
				return
			}
			if pattern {
				a.patterns.add(r, deny)
			} else {
				section.add(r, deny)
			}
		default:
			fe.add(n, fmt.Errorf("unknown directive %q; an ACL file has only `user NAME`, `topic [read|write|readwrite|deny] FILTER` and `pattern [read|write|readwrite|deny] FILTER` lines", truncate(directive)))
		}
	})
	if err := fe.err(); err != nil {
		return nil, err
	}
	return a, nil
}

func cutWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i+1:])
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// parseRule reads "[ACCESS] FILTER". Without an access word the whole
// rest is the filter with readwrite access; a filter with spaces needs the
// access word first, so that a misspelt one ("topic rw a/b") is an error
// rather than a rule for the topic "rw a/b".
func parseRule(s string, pattern bool) (r rule, deny bool, err error) {
	if s == "" {
		return rule{}, false, errors.New("missing topic filter")
	}
	word, rest := cutWord(s)
	access, known := accessWords[word]
	switch {
	case known && rest == "":
		return rule{}, false, fmt.Errorf("missing topic filter after %q", word)
	case known:
		s = rest
	case rest != "":
		return rule{}, false, fmt.Errorf("unknown access %q (use read, write, readwrite or deny before the filter)", truncate(word))
	default:
		access = Read | Write
	}
	f, err := parseFilter(s, pattern)
	if err != nil {
		return rule{}, false, err
	}
	return rule{f: f, access: access}, access == 0, nil
}

// accessWords maps an access word to its grant; deny grants nothing.
var accessWords = map[string]Access{"read": Read, "write": Write, "readwrite": Read | Write, "deny": 0}

// CanPublish reports whether the client may publish to topic. user "" is
// an anonymous client.
func (a *ACL) CanPublish(user, clientID, topic string) bool {
	return a.check(user, clientID, topic, Write, false)
}

// CanReceive reports whether one message on topic may be delivered to
// the client; it enforces deny rules narrower than a subscription.
func (a *ACL) CanReceive(user, clientID, topic string) bool {
	return a.check(user, clientID, topic, Read, false)
}

// CanSubscribe reports whether the client may subscribe to filter: some
// read rule must cover every topic the filter can match, and no deny rule
// may cover the filter. Deny rules narrower than the subscription are
// enforced per message by CanReceive.
func (a *ACL) CanSubscribe(user, clientID, subscription string) bool {
	return a.check(user, clientID, subscription, Read, true)
}

// check applies Mosquitto 2's order to the client's own section and the
// patterns: any deny rule that matches refuses, then any grant of the
// access that matches allows, and nothing else does.
func (a *ACL) check(user, clientID, s string, want Access, subscription bool) bool {
	sb := newSubst(user, clientID)
	own := &a.anonymous
	if user != "" {
		own = a.users[user] // nil: no section, only patterns apply
	}
	sets := [2]*ruleSet{own, &a.patterns}
	for _, rs := range sets {
		if rs == nil {
			continue
		}
		for i := range rs.deny {
			if rs.deny[i].f.matches(s, &sb, subscription) {
				return false
			}
		}
	}
	for _, rs := range sets {
		if rs == nil {
			continue
		}
		for i := range rs.grant {
			if rs.grant[i].access&want != 0 && rs.grant[i].f.matches(s, &sb, subscription) {
				return true
			}
		}
	}
	return false
}
