package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/weir-gateway/weir/shards"
)

// The credentials file (api.credentials_file) is a YAML list of access
// keys:
//
//	- access_key_id: AKIDLOCALAPP1
//	  secret_access_key: 8Qm0r3...          # at least 16 characters
//	  streams: ["telemetry"]                # stream names, or "*" for all
//	  permissions: [read, write]            # any of read, write, admin
//
// Decoding is strict: an unknown key, a wrong type, a duplicate
// access_key_id, an empty secret, an unknown permission or stream name is
// an error at its line, and the whole file is refused (at start, the
// gateway does not start; on reload, the previous keys stay in force).

// ErrCredentials is wrapped by every error about the credentials file.
var ErrCredentials = errors.New("api: bad credentials file")

// CredentialsError is one problem at one line of the credentials file.
type CredentialsError struct {
	File string
	Line int // 0 when the problem is the file as a whole
	Msg  string
}

func (e *CredentialsError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap makes errors.Is(err, ErrCredentials) true.
func (e *CredentialsError) Unwrap() error { return ErrCredentials }

// permission is a set of the three grants.
type permission uint8

const (
	permRead permission = 1 << iota
	permWrite
	permAdmin
)

var permNames = []struct {
	p    permission
	name string
}{{permRead, "read"}, {permWrite, "write"}, {permAdmin, "admin"}}

func (p permission) String() string {
	var s []string
	for _, n := range permNames {
		if p&n.p != 0 {
			s = append(s, n.name)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// minSecretLen refuses secrets a person typed: AWS's are 40 characters.
const minSecretLen = 16

// accessKeyRE keeps ids free of the characters that delimit SigV4's
// Credential (/ , = and spaces).
var accessKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.+@-]{1,128}$`)

// credential is one access key.
type credential struct {
	id      string
	secret  []byte // "AWS4" + secret, the first HMAC key of the derivation
	perms   permission
	all     bool // streams: ["*"]
	streams map[string]bool
	line    int
}

// mayUse reports whether the key may touch a stream at all.
func (c *credential) mayUse(stream string) bool { return c.all || c.streams[stream] }

// scope renders the key's grants for an AccessDenied message.
func (c *credential) scope() string {
	if c.all {
		return c.perms.String() + " on all streams"
	}
	names := make([]string, 0, len(c.streams))
	for n := range c.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	return c.perms.String() + " on " + strings.Join(names, ",")
}

// keySet is one loaded credentials file: the keys by id and the derived signing
// keys, which live and die with the keys they come from.
type keySet struct {
	file string
	keys map[string]*credential

	mu      sync.Mutex
	derived map[derivedID][]byte
}

type derivedID struct {
	key          *credential
	date, region string
}

// maxDerived bounds the signing-key cache. The region is the client's
// choice, so a holder of one key id could otherwise grow it without end;
// a real deployment uses a handful of (key, day, region) triples.
const maxDerived = 1024

// signingKey is HMAC("AWS4"+secret, date, region, "kinesis",
// "aws4_request"), computed once per (key, date, region).
func (cs *keySet) signingKey(c *credential, date, region string) []byte {
	id := derivedID{c, date, region}
	cs.mu.Lock()
	k, ok := cs.derived[id]
	cs.mu.Unlock()
	if ok {
		return k
	}
	k = c.secret
	for _, part := range [...]string{date, region, sigV4Service, sigV4Terminator} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(part))
		k = m.Sum(nil)
	}
	cs.mu.Lock()
	if len(cs.derived) >= maxDerived {
		clear(cs.derived)
	}
	cs.derived[id] = k
	cs.mu.Unlock()
	return k
}

// loadCredentials reads and checks a credentials file.
// CheckCredentialsFile reads the credentials file at path as the server
// would and returns its errors, for `weir check-config`.
func CheckCredentialsFile(path string) error {
	_, err := loadCredentials(path)
	return err
}

func loadCredentials(path string) (*keySet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &CredentialsError{File: path, Msg: fmt.Sprintf("cannot read it: %v", err)}
	}
	return parseCredentials(path, b)
}

// parseCredentials decodes a credentials file. Every problem found is
// returned (joined), each a *CredentialsError with its line.
func parseCredentials(name string, data []byte) (*keySet, error) {
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &CredentialsError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 says "yaml: line N: ..." itself.
		return nil, &CredentialsError{File: name, Msg: err.Error()}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &CredentialsError{File: name, Msg: "lists no access keys (want a YAML list of {access_key_id, secret_access_key, streams, permissions})"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		return nil, &CredentialsError{File: name, Line: root.Line, Msg: "must be a YAML list of access keys ({access_key_id, secret_access_key, streams, permissions})"}
	}
	if len(root.Content) == 0 {
		return nil, &CredentialsError{File: name, Line: root.Line, Msg: "lists no access keys"}
	}
	cs := &keySet{file: name, keys: map[string]*credential{}, derived: map[derivedID][]byte{}}
	for _, n := range root.Content {
		c := parseCredential(n, fail)
		if c == nil {
			continue
		}
		if prev, dup := cs.keys[c.id]; dup {
			fail(c.line, "access_key_id %q is also at line %d; each key must be listed once", c.id, prev.line)
			continue
		}
		cs.keys[c.id] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cs, nil
}

// parseCredential decodes one list entry, reporting problems through fail;
// it returns nil if the entry is unusable.
func parseCredential(n *yaml.Node, fail func(line int, format string, args ...any)) *credential {
	if n.Kind != yaml.MappingNode {
		fail(n.Line, "an access key must be a mapping with access_key_id, secret_access_key, streams and permissions")
		return nil
	}
	c := &credential{line: n.Line, streams: map[string]bool{}}
	seen := map[string]int{}
	var secret string
	ok := true
	bad := func(line int, format string, args ...any) {
		fail(line, format, args...)
		ok = false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if prev, dup := seen[k.Value]; dup {
			bad(k.Line, "%s is given twice (also at line %d)", k.Value, prev)
			continue
		}
		seen[k.Value] = k.Line
		switch k.Value {
		case "access_key_id":
			if s, good := scalar(v, bad, k.Value); good {
				if !accessKeyRE.MatchString(s) {
					bad(v.Line, "access_key_id %q must be 1..128 characters from A-Z a-z 0-9 _ . + @ -", s)
				}
				c.id = s
			}
		case "secret_access_key":
			if s, good := scalar(v, bad, k.Value); good {
				switch {
				case s == "":
					bad(v.Line, "secret_access_key is empty")
				case strings.TrimSpace(s) != s:
					bad(v.Line, "secret_access_key has leading or trailing spaces")
				case len(s) < minSecretLen:
					bad(v.Line, "secret_access_key is %d characters; use at least %d (AWS's are 40), e.g. from: openssl rand -base64 30", len(s), minSecretLen)
				}
				secret = s
			}
		case "streams":
			for _, e := range list(v, bad, k.Value) {
				switch {
				case e.Value == "*":
					c.all = true
				case shards.ValidStreamName(e.Value):
					c.streams[e.Value] = true
				default:
					bad(e.Line, `streams: %q is neither "*" nor a stream name (1..128 characters from a-z A-Z 0-9 _ . -)`, e.Value)
				}
			}
		case "permissions":
			for _, e := range list(v, bad, k.Value) {
				p := permission(0)
				for _, pn := range permNames {
					if e.Value == pn.name {
						p = pn.p
					}
				}
				if p == 0 {
					bad(e.Line, "permissions: unknown permission %q (known: read, write, admin)", e.Value)
				}
				c.perms |= p
			}
		default:
			bad(k.Line, "unknown key %q (known: access_key_id, secret_access_key, streams, permissions)", k.Value)
		}
	}
	for _, req := range [...]string{"access_key_id", "secret_access_key", "streams", "permissions"} {
		if _, has := seen[req]; !has {
			bad(n.Line, "%s is required", req)
		}
	}
	if _, has := seen["streams"]; has && !c.all && len(c.streams) == 0 && ok {
		bad(n.Line, `streams is empty: list the streams the key may use, or "*"`)
	}
	if _, has := seen["permissions"]; has && c.perms == 0 && ok {
		bad(n.Line, "permissions is empty: give any of read, write, admin")
	}
	if !ok {
		return nil
	}
	c.secret = []byte("AWS4" + secret)
	return c
}

func scalar(v *yaml.Node, bad func(int, string, ...any), key string) (string, bool) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		bad(v.Line, "%s must be a string", key)
		return "", false
	}
	return v.Value, true
}

func list(v *yaml.Node, bad func(int, string, ...any), key string) []*yaml.Node {
	if v.Kind != yaml.SequenceNode {
		bad(v.Line, "%s must be a list, e.g. [a, b]", key)
		return nil
	}
	out := v.Content[:0:0]
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode {
			bad(e.Line, "%s: each entry must be a string", key)
			continue
		}
		out = append(out, e)
	}
	return out
}
