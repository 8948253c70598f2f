package auth

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters of the argon2id hashes HashPassword writes. They are one of
// OWASP's equivalent minimum settings (m=19 MiB,t=2 / m=12 MiB,t=3 /
// m=7 MiB,t=5 ...), which all cost about the same CPU; the one with the
// least memory is chosen because argon2 allocates m for every CONNECT
// being verified and the gateway runs on 1 GiB boards. Measured cost in
// doc.go.
const (
	argonMemoryKiB = 7 * 1024
	argonTime      = 5
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Limits on parameters read from a file: a hash whose verification would
// exhaust the board (a typo like m=19456000) is refused when the file is
// loaded rather than when the first client connects.
const (
	maxArgonMemoryKiB = 256 * 1024
	maxArgonTime      = 64
	maxPBKDF2Iter     = 10_000_000
)

// hashSlots bounds how many password hashes run at once: beyond the number
// of CPUs, more at once only adds memory (argon2's m each) and finishes
// none sooner, and a reconnecting fleet would otherwise allocate
// m × devices at the same moment.
var hashSlots = make(chan struct{}, max(runtime.NumCPU(), 1))

// verifier checks a password against one stored hash.
type verifier interface {
	verify(password []byte) bool
}

// Passwords is a parsed password file: user name → hash. It is immutable.
type Passwords struct {
	users map[string]verifier
	// dummy is verified for an unknown user, so that the answer takes
	// about as long as for a known one: a copy of the first entry's
	// scheme and cost with a hash nothing matches.
	dummy verifier
}

// Len is the number of users.
func (p *Passwords) Len() int { return len(p.users) }

// Has reports whether user has an entry.
func (p *Passwords) Has(user string) bool {
	_, ok := p.users[user]
	return ok
}

// Verify checks user's password: nil, or an error wrapping ErrUnknownUser
// or ErrBadPassword (both wrap ErrBadCredentials). An unknown user costs a
// hash of the file's first entry's cost, so timing shows little about who
// exists. The hash compare is constant-time.
func (p *Passwords) Verify(user string, password []byte) error {
	v, ok := p.users[user]
	if !ok {
		v = p.dummy
	}
	hashSlots <- struct{}{}
	good := v.verify(password)
	<-hashSlots
	switch {
	case !ok:
		return ErrUnknownUser
	case !good:
		return ErrBadPassword
	}
	return nil
}

// LoadPasswords reads and parses a password file.
func LoadPasswords(path string) (*Passwords, error) {
	_, v, err := loadFile(path, ParsePasswords)
	return v, err
}

// ParsePasswords parses a password file in Mosquitto's format; name is
// used in errors. Every bad line is reported (as *FileError), none of
// them with its password or hash.
func ParsePasswords(name string, data []byte) (*Passwords, error) {
	p := &Passwords{users: map[string]verifier{}}
	fe := fileErrors{name: name}
	firstLine := map[string]int{}
	forEachLine(data, func(n int, line string) {
		user, hash, err := splitPasswordLine(line)
		if err != nil {
			fe.add(n, err)
			return
		}
		v, err := parseHash(hash)
		if err != nil {
			fe.add(n, fmt.Errorf("user %q: %w", user, err))
			return
		}
		if first, dup := firstLine[user]; dup {
			fe.add(n, fmt.Errorf("user %q: already defined on line %d; remove one of the two lines", user, first))
			return
		}
		firstLine[user] = n
		p.users[user] = v
		if p.dummy == nil {
			p.dummy = dummyOf(v)
		}
	})
	if err := fe.err(); err != nil {
		return nil, err
	}
	if p.dummy == nil {
		p.dummy = &argonHash{memory: argonMemoryKiB, time: argonTime, threads: argonThreads,
			salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}
	}
	return p, nil
}

// forEachLine calls fn with each line that is not blank or a comment,
// trimmed of surrounding white space, and its 1-based number.
func forEachLine(data []byte, fn func(n int, line string)) {
	for n := 1; len(data) > 0; n++ {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte{'\n'})
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		fn(n, line)
	}
}

// Errors of a password line say what to do; the hash is never quoted.
var (
	errNoColon   = errors.New("no ':' between the user name and the password hash; lines are USER:HASH (write them with `weir passwd FILE USER` or mosquitto_passwd)")
	errEmptyUser = errors.New("empty user name before ':'")
)

func splitPasswordLine(line string) (user, hash string, err error) {
	user, hash, ok := strings.Cut(line, ":")
	switch {
	case !ok:
		return "", "", errNoColon
	case user == "":
		return "", "", errEmptyUser
	}
	return user, hash, nil
}

const supportedSchemes = "$7$ (mosquitto_passwd), $6$ (Mosquitto 1.x) or $argon2id$ (weir passwd)"

// parseHash decodes one stored hash; the messages name the user's fix.
func parseHash(h string) (verifier, error) {
	switch {
	case h == "":
		return nil, errors.New("empty password hash; set one with `weir passwd FILE USER` or mosquitto_passwd")
	case strings.HasPrefix(h, "$7$"):
		return parsePBKDF2(h)
	case strings.HasPrefix(h, "$6$"):
		return parseSHA512(h)
	case strings.HasPrefix(h, "$argon2id$"):
		return parseArgon2id(h)
	case h[0] == '$':
		scheme, _, _ := strings.Cut(h[1:], "$")
		if len(scheme) > 16 {
			scheme = scheme[:16] + "..."
		}
		return nil, fmt.Errorf("unsupported hash scheme $%s$; use %s", scheme, supportedSchemes)
	default:
		return nil, errors.New("the password is stored in plain text; hash it with `weir passwd FILE USER` or `mosquitto_passwd -U FILE`")
	}
}

// fields splits "$id$a$b..." into n fields after the id, or fails with
// the scheme's expected layout.
func fields(h string, n int, layout string) ([]string, error) {
	f := strings.Split(h, "$")
	if len(f) != n+2 || f[0] != "" {
		return nil, fmt.Errorf("malformed $%s$ hash: expected %s", f[1], layout)
	}
	return f[2:], nil
}

func decodeStd(what, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the %s is not valid base64", what)
	}
	return b, nil
}

// pbkdf2Hash is mosquitto_passwd 2.x's $7$ITER$SALT$HASH: PBKDF2 with
// HMAC-SHA512, hash 64 bytes, standard base64 with padding.
type pbkdf2Hash struct {
	iter       int
	salt, hash []byte
}

func parsePBKDF2(h string) (verifier, error) {
	f, err := fields(h, 3, "$7$ITERATIONS$SALT$HASH")
	if err != nil {
		return nil, err
	}
	iter, err := strconv.Atoi(f[0])
	if err != nil || iter < 1 || iter > maxPBKDF2Iter {
		return nil, fmt.Errorf("$7$ hash: iteration count must be 1..%d", maxPBKDF2Iter)
	}
	salt, err := decodeStd("$7$ salt", f[1])
	if err != nil {
		return nil, err
	}
	hash, err := decodeStd("$7$ hash", f[2])
	if err != nil {
		return nil, err
	}
	if len(salt) == 0 || len(hash) != sha512.Size {
		return nil, fmt.Errorf("$7$ hash: need a salt and a %d-byte hash", sha512.Size)
	}
	return &pbkdf2Hash{iter: iter, salt: salt, hash: hash}, nil
}

func (h *pbkdf2Hash) verify(password []byte) bool {
	got, err := pbkdf2.Key(sha512.New, string(password), h.salt, h.iter, len(h.hash))
	return err == nil && subtle.ConstantTimeCompare(got, h.hash) == 1
}

// sha512Hash is Mosquitto 1.x's $6$SALT$HASH: SHA-512 over the password
// then the salt.
type sha512Hash struct{ salt, hash []byte }

func parseSHA512(h string) (verifier, error) {
	f, err := fields(h, 2, "$6$SALT$HASH")
	if err != nil {
		return nil, err
	}
	salt, err := decodeStd("$6$ salt", f[0])
	if err != nil {
		return nil, err
	}
	hash, err := decodeStd("$6$ hash", f[1])
	if err != nil {
		return nil, err
	}
	if len(salt) == 0 || len(hash) != sha512.Size {
		return nil, fmt.Errorf("$6$ hash: need a salt and a %d-byte hash", sha512.Size)
	}
	return &sha512Hash{salt: salt, hash: hash}, nil
}

func (h *sha512Hash) verify(password []byte) bool {
	d := sha512.New()
	d.Write(password)
	d.Write(h.salt)
	return subtle.ConstantTimeCompare(d.Sum(nil), h.hash) == 1
}

// argonHash is a PHC string: $argon2id$v=19$m=KiB,t=N,p=N$SALT$HASH with
// unpadded standard base64, as the reference implementation writes.
type argonHash struct {
	memory    uint32
	time      uint32
	threads   uint8
	salt, key []byte
}

func parseArgon2id(h string) (verifier, error) {
	const layout = "$argon2id$v=19$m=KiB,t=N,p=N$SALT$HASH"
	f, err := fields(h, 4, layout)
	if err != nil {
		return nil, err
	}
	if f[0] != "v=19" {
		return nil, fmt.Errorf("$argon2id$ hash: only version v=19 is supported")
	}
	var a argonHash
	var m, t, p uint64
	if _, err := fmt.Sscanf(f[1], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || "m="+strconv.FormatUint(m, 10)+",t="+strconv.FormatUint(t, 10)+",p="+strconv.FormatUint(p, 10) != f[1] {
		return nil, fmt.Errorf("malformed $argon2id$ parameters: expected %s", layout)
	}
	if t < 1 || t > maxArgonTime || p < 1 || p > 255 || m < 8*p || m > maxArgonMemoryKiB {
		return nil, fmt.Errorf("$argon2id$ hash: parameters out of range (t 1..%d, p 1..255, m 8*p..%d KiB)", maxArgonTime, maxArgonMemoryKiB)
	}
	a.memory, a.time, a.threads = uint32(m), uint32(t), uint8(p)
	if a.salt, err = base64.RawStdEncoding.DecodeString(f[2]); err != nil {
		return nil, errors.New("the $argon2id$ salt is not valid unpadded base64")
	}
	if a.key, err = base64.RawStdEncoding.DecodeString(f[3]); err != nil {
		return nil, errors.New("the $argon2id$ hash is not valid unpadded base64")
	}
	if len(a.salt) < 8 || len(a.key) < 16 || len(a.key) > 1024 {
		return nil, errors.New("$argon2id$ hash: salt must be at least 8 bytes and the hash 16..1024 bytes")
	}
	return &a, nil
}

func (a *argonHash) verify(password []byte) bool {
	return subtle.ConstantTimeCompare(idKey(a, password), a.key) == 1
}

// idKey derives a key of len(a.key) bytes with a's parameters.
func idKey(a *argonHash, password []byte) []byte {
	return argon2.IDKey(password, a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
}

func (a *argonHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.memory, a.time, a.threads,
		base64.RawStdEncoding.EncodeToString(a.salt), base64.RawStdEncoding.EncodeToString(a.key))
}

// dummyOf returns a verifier of the same scheme and cost as v that no
// password matches (its hash is all zeros).
func dummyOf(v verifier) verifier {
	switch h := v.(type) {
	case *pbkdf2Hash:
		return &pbkdf2Hash{iter: h.iter, salt: h.salt, hash: make([]byte, len(h.hash))}
	case *sha512Hash:
		return &sha512Hash{salt: h.salt, hash: make([]byte, len(h.hash))}
	case *argonHash:
		d := *h
		d.key = make([]byte, len(h.key))
		return &d
	}
	panic(fmt.Sprintf("auth: dummyOf(%T)", v))
}

// HashPassword returns a new argon2id PHC string for password with a
// random salt.
func HashPassword(password []byte) (string, error) {
	if len(password) == 0 {
		return "", errors.New("auth: empty password")
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: read random salt: %w", err)
	}
	a := argonHash{memory: argonMemoryKiB, time: argonTime, threads: argonThreads, salt: salt}
	hashSlots <- struct{}{}
	a.key = argon2.IDKey(password, salt, a.time, a.memory, a.threads, argonKeyLen)
	<-hashSlots
	return a.String(), nil
}
