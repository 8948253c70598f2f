package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Shard iterators and pagination tokens are opaque to clients but carry
// their whole state, so the gateway keeps nothing per reader and they
// survive a gateway restart (given the same secret).
//
// Layout before base64url (no padding):
//
//	kind(1) | payload | mac(16)
//
// mac is HMAC-SHA256 over kind|payload, truncated to 128 bits; a changed
// byte anywhere makes the token invalid. An iterator's payload is
//
//	version(1)=1 | issued unix ms(8) | stream created unix ms(8) | next seq(8) |
//	len(stream)(1) | stream | len(shard)(1) | shard
//
// all big endian. The stream's creation time makes an iterator of a deleted
// stream useless against a new stream of the same name.
const (
	kindIterator  = 'I'
	kindNextToken = 'N'
	macLen        = 16

	// IteratorTTL is how long a shard iterator stays valid, as in Kinesis.
	IteratorTTL = 5 * time.Minute
	// NextTokenTTL is how long a ListShards/ListStreamConsumers token stays
	// valid, as in Kinesis.
	NextTokenTTL = 5 * time.Minute
)

var errBadToken = errors.New("api: token is malformed or was tampered with")

type signer struct{ key []byte }

func (s signer) seal(kind byte, payload []byte) string {
	b := make([]byte, 0, 1+len(payload)+macLen)
	b = append(b, kind)
	b = append(b, payload...)
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	b = m.Sum(b)[:1+len(payload)+macLen]
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s signer) open(kind byte, tok string) ([]byte, error) {
	// Strict: a token differing only in the unused bits of its last
	// character is a different token, and is refused.
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(b) < 1+macLen || b[0] != kind {
		return nil, errBadToken
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	m := hmac.New(sha256.New, s.key)
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)[:macLen]) {
		return nil, errBadToken
	}
	return body[1:], nil
}

// iterator is a position in one shard.
type iterator struct {
	Issued        int64 // unix ms
	StreamCreated int64 // unix ms
	Next          uint64
	Stream        string
	Shard         string
}

func (s signer) encodeIterator(it iterator) string {
	p := make([]byte, 0, 1+24+2+len(it.Stream)+len(it.Shard))
	p = append(p, 1)
	p = binary.BigEndian.AppendUint64(p, uint64(it.Issued))
	p = binary.BigEndian.AppendUint64(p, uint64(it.StreamCreated))
	p = binary.BigEndian.AppendUint64(p, it.Next)
	p = append(p, byte(len(it.Stream)))
	p = append(p, it.Stream...)
	p = append(p, byte(len(it.Shard)))
	p = append(p, it.Shard...)
	return s.seal(kindIterator, p)
}

// decodeIterator checks an iterator's integrity and age. Kinesis answers a
// malformed or altered iterator with InvalidArgumentException and an old one
// with ExpiredIteratorException.
func (s signer) decodeIterator(tok string, now time.Time) (iterator, error) {
	var it iterator
	p, err := s.open(kindIterator, tok)
	if err != nil || len(p) < 1+24+2 || p[0] != 1 {
		return it, invalidArg("Invalid ShardIterator.")
	}
	it.Issued = int64(binary.BigEndian.Uint64(p[1:]))
	it.StreamCreated = int64(binary.BigEndian.Uint64(p[9:]))
	it.Next = binary.BigEndian.Uint64(p[17:])
	rest := p[25:]
	n := int(rest[0])
	if len(rest) < 1+n+1 {
		return it, invalidArg("Invalid ShardIterator.")
	}
	it.Stream = string(rest[1 : 1+n])
	rest = rest[1+n:]
	m := int(rest[0])
	if len(rest) != 1+m {
		return it, invalidArg("Invalid ShardIterator.")
	}
	it.Shard = string(rest[1:])
	if age := now.UnixMilli() - it.Issued; age > IteratorTTL.Milliseconds() {
		return it, newError(http.StatusBadRequest, errExpiredIterator,
			"Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			time.UnixMilli(it.Issued).UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123), IteratorTTL.Milliseconds())
	}
	return it, nil
}

// pageToken is the state behind a NextToken.
type pageToken struct {
	Issued        int64     `json:"i"`
	Stream        string    `json:"s"`
	StreamCreated int64     `json:"c,omitempty"`
	After         string    `json:"a,omitempty"` // exclusive start (shard id or consumer name)
	Filter        string    `json:"f,omitempty"`
	FilterShard   string    `json:"fs,omitempty"`
	FilterTime    *wireTime `json:"ft,omitempty"`
}

func (s signer) encodeToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return s.seal(kindNextToken, b)
}

func (s signer) decodeToken(tok string, now time.Time) (pageToken, error) {
	var t pageToken
	p, err := s.open(kindNextToken, tok)
	if err != nil || json.Unmarshal(p, &t) != nil {
		return t, invalidArg("Invalid NextToken.")
	}
	if now.UnixMilli()-t.Issued > NextTokenTTL.Milliseconds() {
		return t, newError(http.StatusBadRequest, errExpiredNextToken, "The NextToken has expired; list again without it.")
	}
	return t, nil
}
