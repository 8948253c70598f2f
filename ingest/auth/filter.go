package auth

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// A filter is an ACL rule's topic filter, split into levels once at load
// so that a check walks the topic level by level without allocating.
type filter struct {
	text   string
	levels []level
	// usesUser/usesClient: the filter has a %u/%c level, so it never
	// matches a client without a usable user name/client id.
	usesUser, usesClient bool
}

type levelKind uint8

const (
	literalLevel levelKind = iota
	plusLevel
	hashLevel
	templateLevel // literal text with %u/%c (pattern lines only)
)

type level struct {
	kind  levelKind
	lit   string
	parts []part // templateLevel: concatenated in order
}

// part is literal text (sub 0) or a substitution ('u' or 'c').
type part struct {
	lit string
	sub byte
}

// subst holds the values a pattern's %u and %c stand for in one check.
// A value that is empty or holds '+', '#' or '/' is unusable: it could
// only widen a match (a client id "+" must not turn devices/%c/# into
// devices/+/#), so filters that need it match nothing.
type subst struct {
	user, client     string
	userOK, clientOK bool
}

func newSubst(user, client string) subst {
	return subst{user: user, client: client, userOK: usable(user), clientOK: usable(client)}
}

func usable(v string) bool { return v != "" && !strings.ContainsAny(v, "+#/") }

// maxFilterLen is MQTT's limit on a topic filter's length.
const maxFilterLen = 65535

// parseFilter checks an MQTT topic filter and splits it; with templates,
// %u and %c inside a level are substitutions (pattern lines), otherwise
// they are literal text (topic lines, as in Mosquitto).
func parseFilter(s string, templates bool) (filter, error) {
	switch {
	case s == "":
		return filter{}, errors.New("empty topic filter")
	case len(s) > maxFilterLen:
		return filter{}, errors.New("topic filter longer than 65535 bytes")
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return filter{}, errors.New("topic filter is not valid UTF-8 or contains NUL")
	}
	f := filter{text: s}
	n := strings.Count(s, "/") + 1
	f.levels = make([]level, 0, n)
	for i, lv := range strings.Split(s, "/") {
		switch {
		case lv == "#":
			if i != n-1 {
				return filter{}, errors.New("'#' must be the last level of a topic filter (e.g. a/#, not a/#/b)")
			}
			f.levels = append(f.levels, level{kind: hashLevel})
		case lv == "+":
			f.levels = append(f.levels, level{kind: plusLevel})
		case strings.ContainsAny(lv, "+#"):
			return filter{}, errors.New("'+' and '#' must fill a whole level of a topic filter (e.g. a/+/b, not a+/b)")
		case templates && indexSubstitution(lv) >= 0:
			l := level{kind: templateLevel, parts: splitTemplate(lv)}
			for _, p := range l.parts {
				f.usesUser = f.usesUser || p.sub == 'u'
				f.usesClient = f.usesClient || p.sub == 'c'
			}
			f.levels = append(f.levels, l)
		default:
			f.levels = append(f.levels, level{kind: literalLevel, lit: lv})
		}
	}
	return f, nil
}

func splitTemplate(lv string) []part {
	var parts []part
	for lv != "" {
		i := indexSubstitution(lv)
		if i < 0 {
			parts = append(parts, part{lit: lv})
			break
		}
		if i > 0 {
			parts = append(parts, part{lit: lv[:i]})
		}
		parts = append(parts, part{sub: lv[i+1]})
		lv = lv[i+2:]
	}
	return parts
}

// indexSubstitution finds the first %u or %c; any other '%' is text.
func indexSubstitution(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && (s[i+1] == 'u' || s[i+1] == 'c') {
			return i
		}
	}
	return -1
}

// usableWith reports whether f can match anything for these values.
func (f *filter) usableWith(sb *subst) bool {
	return (!f.usesUser || sb.userOK) && (!f.usesClient || sb.clientOK)
}

// matchTemplate reports whether the topic level s is the template with
// sb's values put in; the caller has checked usableWith.
func (l *level) matchTemplate(s string, sb *subst) bool {
	for _, p := range l.parts {
		v := p.lit
		switch p.sub {
		case 'u':
			v = sb.user
		case 'c':
			v = sb.client
		}
		if !strings.HasPrefix(s, v) {
			return false
		}
		s = s[len(v):]
	}
	return s == ""
}

// firstLevelAllows applies the MQTT rule that a filter starting with a
// wildcard matches no topic starting with '$': a '$' topic or filter is
// reachable only through a filter whose first level is plain text. A
// template there does not count, so that a client named "$SYS" gains
// nothing from %c/#.
func (f *filter) firstLevelAllows(s string) bool {
	return s[0] != '$' || f.levels[0].kind == literalLevel
}

// nextLevel splits the first level off a topic or filter; more is false
// once s held the last level.
func nextLevel(s string) (lv, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// matches is covers for a subscription filter and matchTopic for a
// topic name. (Direct calls, not a func value: through one, sb would
// escape and every check would allocate.)
func (f *filter) matches(s string, sb *subst, subscription bool) bool {
	if subscription {
		return f.covers(s, sb)
	}
	return f.matchTopic(s, sb)
}

// matchTopic reports whether f matches the topic name (no wildcards).
func (f *filter) matchTopic(topic string, sb *subst) bool {
	if topic == "" || !f.usableWith(sb) || !f.firstLevelAllows(topic) {
		return false
	}
	rest, more := topic, true
	for i := range f.levels {
		l := &f.levels[i]
		if l.kind == hashLevel {
			return true // '#' also matches the parent level
		}
		if !more {
			return false
		}
		var lv string
		lv, rest, more = nextLevel(rest)
		switch l.kind {
		case literalLevel:
			if lv != l.lit {
				return false
			}
		case templateLevel:
			if !l.matchTemplate(lv, sb) {
				return false
			}
		}
	}
	return !more
}

// covers reports whether every topic the subscription filter sub can
// match is matched by f. A wildcard in sub is covered only by a wildcard
// in f at the same level ('+' by '+' or '#', '#' by '#'), never by text
// or a template. An invalid sub covers nothing.
func (f *filter) covers(sub string, sb *subst) bool {
	if sub == "" || !f.usableWith(sb) || !f.firstLevelAllows(sub) {
		return false
	}
	rest, more := sub, true
	for i := range f.levels {
		l := &f.levels[i]
		if l.kind == hashLevel {
			return validFilterTail(rest, more)
		}
		if !more {
			return false
		}
		var lv string
		lv, rest, more = nextLevel(rest)
		switch {
		case lv == "+":
			if l.kind != plusLevel {
				return false
			}
		case lv == "#" || strings.ContainsAny(lv, "+#"):
			return false // sub's '#' needs f's '#' here; anything else is invalid
		case l.kind == literalLevel:
			if lv != l.lit {
				return false
			}
		case l.kind == templateLevel:
			if !l.matchTemplate(lv, sb) {
				return false
			}
		}
	}
	return !more
}

// validFilterTail checks the levels of a subscription filter that a '#'
// rule level absorbs: wildcards must still be well-formed.
func validFilterTail(rest string, more bool) bool {
	for more {
		var lv string
		lv, rest, more = nextLevel(rest)
		switch {
		case lv == "#":
			return !more
		case lv == "+":
		case strings.ContainsAny(lv, "+#"):
			return false
		}
	}
	return true
}
