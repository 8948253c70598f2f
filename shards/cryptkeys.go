package shards

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Encryption errors (ENCRYPTION.md). Each reaches callers inside a
// *KeyError naming the key; the API maps them to Kinesis' KMS exceptions.
var (
	// ErrEncryptionOff: the gateway has no encryption.keys_dir.
	ErrEncryptionOff = errors.New("shards: stream encryption is not configured (set encryption.keys_dir)")
	// ErrKeyNotFound: no key file for the KeyId.
	ErrKeyNotFound = errors.New("shards: encryption key not found")
	// ErrKeyInvalid: the key file exists but cannot be used (permissions,
	// size, encoding).
	ErrKeyInvalid = errors.New("shards: encryption key file is unusable")
	// ErrKeyMismatch: the key file holds another key than the one the
	// record was written with (the file was replaced).
	ErrKeyMismatch = errors.New("shards: encryption key file does not hold the key the record was written with")
	// ErrTampered: an encrypted record failed authentication with the right
	// key, or its envelope is malformed: the segment was damaged or altered.
	ErrTampered = errors.New("shards: encrypted record is damaged or was altered")
)

// KeyError is a failure to use a stream encryption key. KeyID is the name
// the records or the stream use, Path its file ("" when none applies).
type KeyError struct {
	KeyID string
	Path  string
	Err   error
}

func (e *KeyError) Error() string {
	if e.KeyID == "" {
		return e.Err.Error()
	}
	if e.Path == "" {
		return fmt.Sprintf("key %q: %v", e.KeyID, e.Err)
	}
	return fmt.Sprintf("key %q (%s): %v", e.KeyID, e.Path, e.Err)
}

// Unwrap lets errors.Is match the sentinel inside.
func (e *KeyError) Unwrap() error { return e.Err }

// KeySize is the size of a stream encryption key: AES-256.
const KeySize = 32

// maxKeyName bounds a key's name: it is stored in every encrypted record
// behind a one-byte length.
const maxKeyName = 255

// maxKeyID is Kinesis' limit on the KeyId parameter.
const maxKeyID = 2048

// keyNameRE: slash-separated parts of letters, digits, '_' and '-'. No
// part can be "." or "..", so a name joined under keys_dir stays inside it.
var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`)

// KeyName maps a Kinesis KeyId (a KMS key id, alias name, key ARN or alias
// ARN, or any local name) to the name of its key file under keys_dir: an
// ARN gives its resource ("arn:aws:kms:r:a:key/ID" → "ID",
// "arn:aws:kms:r:a:alias/NAME" → "alias/NAME"); every other KeyId is the
// name itself. Names are slash-separated parts of [A-Za-z0-9_-], at most
// 255 bytes; anything else is ErrInvalidArgument.
func KeyName(keyID string) (string, error) {
	if keyID == "" || len(keyID) > maxKeyID {
		return "", fmt.Errorf("%w: KeyId must be 1..%d characters", ErrInvalidArgument, maxKeyID)
	}
	name := keyID
	if strings.HasPrefix(keyID, "arn:") {
		p := strings.SplitN(keyID, ":", 6)
		if len(p) != 6 || p[2] != "kms" {
			return "", fmt.Errorf("%w: KeyId %q is an ARN but not a KMS key or alias ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID or alias/NAME)", ErrInvalidArgument, keyID)
		}
		switch {
		case strings.HasPrefix(p[5], "key/"):
			name = strings.TrimPrefix(p[5], "key/")
		case strings.HasPrefix(p[5], "alias/"):
			name = p[5]
		default:
			return "", fmt.Errorf("%w: KeyId %q: the ARN's resource must be key/ID or alias/NAME", ErrInvalidArgument, keyID)
		}
	}
	if len(name) > maxKeyName || !keyNameRE.MatchString(name) {
		return "", fmt.Errorf("%w: KeyId %q: a key name is slash-separated parts of A-Z a-z 0-9 _ -, at most %d bytes", ErrInvalidArgument, keyID, maxKeyName)
	}
	return name, nil
}

// dataKey is one loaded key, ready to seal and open records.
type dataKey struct {
	name  string
	aead  cipher.AEAD
	check [checkSize]byte
}

const checkSize = 4

// keyCheck is a short fingerprint of a key stored with each record, so a
// replaced key file is told apart from a damaged record. Four bytes of an
// HMAC reveal nothing usable about the key.
func keyCheck(key []byte) (c [checkSize]byte) {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("weir stream key check v1"))
	copy(c[:], m.Sum(nil))
	return c
}

// keyring loads key files from a keys directory and keeps them in memory.
// A key once loaded stays loaded until the store closes: replacing a file
// under a running gateway changes nothing until the next start.
type keyring struct {
	dir   string // "" = encryption off
	mu    sync.RWMutex
	keys  map[string]*dataKey
	nonce nonceSource
}

func newKeyring(dir string) (*keyring, error) {
	k := &keyring{dir: dir, keys: map[string]*dataKey{}}
	if err := k.nonce.init(); err != nil {
		return nil, err
	}
	if dir == "" {
		return k, nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("shards: encryption.keys_dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("shards: encryption.keys_dir %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("shards: encryption.keys_dir %s is writable by every user (mode %04o); anyone could plant a key: chmod o-w", dir, fi.Mode().Perm())
	}
	return k, nil
}

// get returns the key named name, loading its file on first use.
func (k *keyring) get(name string) (*dataKey, error) {
	k.mu.RLock()
	dk := k.keys[name]
	k.mu.RUnlock()
	if dk != nil {
		return dk, nil
	}
	dk, err := k.load(name)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if prev := k.keys[name]; prev != nil {
		return prev, nil
	}
	k.keys[name] = dk
	return dk, nil
}

// load reads and checks the key file of name (see ENCRYPTION.md for the
// format and the permission rule).
func (k *keyring) load(name string) (*dataKey, error) {
	if k.dir == "" {
		return nil, &KeyError{KeyID: name, Err: ErrEncryptionOff}
	}
	if !keyNameRE.MatchString(name) || len(name) > maxKeyName {
		// Names come from KeyName or from a record's envelope; a damaged
		// envelope must not reach the filesystem.
		return nil, &KeyError{KeyID: name, Err: fmt.Errorf("%w: invalid key name", ErrTampered)}
	}
	path := filepath.Join(k.dir, filepath.FromSlash(name))
	bad := func(format string, args ...any) (*dataKey, error) {
		return nil, &KeyError{KeyID: name, Path: path, Err: fmt.Errorf("%w: "+format, append([]any{ErrKeyInvalid}, args...)...)}
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &KeyError{KeyID: name, Path: path, Err: fmt.Errorf("%w: no file %s", ErrKeyNotFound, path)}
	}
	if err != nil {
		return bad("%v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return bad("%v", err)
	}
	if !fi.Mode().IsRegular() {
		return bad("not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return bad("mode %04o lets other users read or change it; chmod 600 (or 640 for a key group)", perm)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return bad("%v", err)
	}
	key, err := parseKey(raw)
	if err != nil {
		return bad("%v", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return bad("%v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return bad("%v", err)
	}
	return &dataKey{name: name, aead: aead, check: keyCheck(key)}, nil
}

// parseKey accepts 32 raw bytes, or 64 hex digits, or the standard base64
// of 32 bytes, the text forms with surrounding white space allowed. 32
// bytes of printable text are refused: that is a weak password or a
// 16-byte key in hex, not 32 random bytes (which are all printable once
// in 10^14).
func parseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		if printable(b) {
			return nil, fmt.Errorf("holds %d bytes of text; a raw key is %d random bytes (e.g. `head -c 32 /dev/urandom > FILE`)", len(b), KeySize)
		}
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	return nil, fmt.Errorf("must hold a %d-byte key: %d raw bytes, %d hex digits or base64 (e.g. `head -c 32 /dev/urandom > FILE`); it has %d bytes",
		KeySize, KeySize, 2*KeySize, len(b))
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
