package shards

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
)

// An encrypted record is stored in its wal frame as an envelope instead of
// the plain CBOR record (ENCRYPTION.md has the diagram):
//
//	magic 0xEC | version 1 | name length n | key name (n) | key check (4)
//	| arrival (8, big endian unix ms) | nonce (12) | AES-256-GCM sealed record + tag (16)
//
// The plain record is a CBOR array, whose first byte is 0x80..0x9f, so the
// magic byte alone tells the two apart. Everything before the sealed bytes
// plus the stream's name is the GCM additional data: a header cannot be
// edited, nor a record moved to another stream, without failing to open.
// The arrival time stays readable so retention and AT_TIMESTAMP work
// without the key.
const (
	envMagic    = 0xEC
	envVersion  = 1
	nonceSize   = 12
	tagSize     = 16
	envFixed    = 3 + checkSize + 8 + nonceSize // without the name
	envOverhead = envFixed + tagSize            // without the name
)

// envelope is a parsed envelope; its slices alias the stored bytes.
type envelope struct {
	name    []byte // aliases the record: string(name) only where it is kept
	check   [checkSize]byte
	arrival int64
	nonce   []byte
	header  []byte // magic .. nonce: the additional data, with the stream name
	sealed  []byte
}

func isEnvelope(b []byte) bool { return len(b) > 0 && b[0] == envMagic }

// envelopeArrival is parseEnvelope's arrival alone, without copying the
// key name: the committer asks for it for every record (arrivalTag).
func envelopeArrival(b []byte) (uint64, bool) {
	if len(b) < 3 || b[1] != envVersion {
		return 0, false
	}
	n := int(b[2])
	if n == 0 || len(b) < envOverhead+n {
		return 0, false
	}
	ms := binary.BigEndian.Uint64(b[3+n+checkSize:])
	return ms, ms <= 1<<63-1
}

// parseEnvelope splits b without decrypting it.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) < 3 || b[0] != envMagic {
		return envelope{}, fmt.Errorf("%w: not an encrypted record", ErrTampered)
	}
	if b[1] != envVersion {
		return envelope{}, fmt.Errorf("%w: unknown envelope version %d", ErrTampered, b[1])
	}
	n := int(b[2])
	if n == 0 || len(b) < envOverhead+n {
		return envelope{}, fmt.Errorf("%w: envelope of %d bytes is truncated", ErrTampered, len(b))
	}
	e := envelope{name: b[3 : 3+n]}
	p := 3 + n
	copy(e.check[:], b[p:])
	p += checkSize
	e.arrival = int64(binary.BigEndian.Uint64(b[p:]))
	p += 8
	e.nonce = b[p : p+nonceSize]
	p += nonceSize
	e.header, e.sealed = b[:p], b[p:]
	return e, nil
}

// nonceSource hands out GCM nonces that never repeat under one key: a
// random 64-bit base drawn when the store opens, plus a counter. The
// counter's high half is added to the base and its low half fills the
// last 4 bytes, so one process never repeats a nonce, and two processes
// (restarts, or gateways sharing a key) overlap only if their random bases
// fall within 2^-32·records of each other — far safer than random 96-bit
// nonces, which NIST caps at 2^32 records per key.
type nonceSource struct {
	base uint64
	n    atomic.Uint64
}

func (s *nonceSource) init() error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("shards: draw nonce base: %w", err)
	}
	s.base = binary.BigEndian.Uint64(b[:])
	return nil
}

func (s *nonceSource) put(dst []byte) {
	n := s.n.Add(1) - 1
	binary.BigEndian.PutUint64(dst, s.base+n>>32)
	binary.BigEndian.PutUint32(dst[8:], uint32(n))
}

// seal wraps the plain record bytes in an envelope for stream.
func (k *keyring) seal(dk *dataKey, stream string, arrival int64, plain []byte) []byte {
	out := k.header(dk, arrival, len(plain))
	return k.sealTail(dk, stream, append(out, plain...), len(out))
}

// sealRecord encodes rec straight after the envelope header and seals it
// in place: one buffer per record, as for a plain one.
func (k *keyring) sealRecord(dk *dataKey, stream string, rec *Record) ([]byte, error) {
	size := len(rec.Data) + len(rec.Key) + len(rec.Topic) + len(rec.ClientID) + 32
	for _, p := range rec.Props {
		size += len(p.Key) + len(p.Value) + 4
	}
	out := k.header(dk, rec.Arrival, size)
	buf := bytes.NewBuffer(out)
	if err := bufEncMode.MarshalToBuffer(storedOf(rec), buf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return k.sealTail(dk, stream, buf.Bytes(), len(out)), nil
}

// header starts an envelope with room for size bytes of record and the tag.
func (k *keyring) header(dk *dataKey, arrival int64, size int) []byte {
	n := len(dk.name)
	out := make([]byte, envFixed+n, envOverhead+n+size)
	out[0], out[1], out[2] = envMagic, envVersion, byte(n)
	p := 3 + copy(out[3:], dk.name)
	p += copy(out[p:], dk.check[:])
	binary.BigEndian.PutUint64(out[p:], uint64(arrival))
	k.nonce.put(out[p+8:])
	return out
}

// sealTail encrypts b[hdr:] in place behind the header b[:hdr].
func (k *keyring) sealTail(dk *dataKey, stream string, b []byte, hdr int) []byte {
	nonce := b[hdr-nonceSize : hdr]
	adp := adPool.Get().(*[]byte)
	ad := append(append((*adp)[:0], b[:hdr]...), stream...)
	out := dk.aead.Seal(b[:hdr], nonce, b[hdr:], ad)
	*adp = ad
	adPool.Put(adp)
	return out
}

// adPool holds additional-data buffers: the AEAD interface makes a local
// one escape, which would cost an allocation per record.
var adPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// open returns the plain record bytes of an envelope of stream.
func (k *keyring) open(stream string, b []byte) ([]byte, error) {
	e, err := parseEnvelope(b)
	if err != nil {
		return nil, &KeyError{Err: err}
	}
	k.mu.RLock()
	dk := k.keys[string(e.name)] // no allocation for the lookup
	k.mu.RUnlock()
	if dk == nil {
		if dk, err = k.get(string(e.name)); err != nil {
			return nil, err
		}
	}
	if dk.check != e.check {
		return nil, &KeyError{KeyID: dk.name, Err: fmt.Errorf("%w (record's key check %x, key file's %x)", ErrKeyMismatch, e.check, dk.check)}
	}
	adp := adPool.Get().(*[]byte)
	ad := append(append((*adp)[:0], e.header...), stream...)
	plain, err := dk.aead.Open(nil, e.nonce, e.sealed, ad)
	*adp = ad
	adPool.Put(adp)
	if err != nil {
		return nil, &KeyError{KeyID: dk.name, Err: fmt.Errorf("%w: %v", ErrTampered, err)}
	}
	return plain, nil
}

// encryption is a stream's current encryption setting.
type encryption struct {
	keyID string // as StartStreamEncryption gave it (DescribeStream shows it)
	name  string // KeyName(keyID)
}

// encode turns a record into what the stream's log stores: the CBOR record,
// sealed in an envelope while the stream is encrypted. A key that cannot be
// loaded fails the append: an encrypted stream never falls back to storing
// plain text.
func (st *Stream) encode(rec *Record) ([]byte, error) { return st.encodeTo(nil, rec) }

// encodeTo is encode appending a plain record to buf (a pooled buffer on
// the deferred path); an encrypted one gets a buffer of its own.
func (st *Stream) encodeTo(buf []byte, rec *Record) ([]byte, error) {
	enc := st.enc.Load()
	if enc == nil {
		return appendRecord(buf, rec), nil
	}
	dk, err := st.store.keys.get(enc.name)
	if err != nil {
		return nil, fmt.Errorf("shards: encrypt record for %s: %w", st.name, err)
	}
	return st.store.keys.sealRecord(dk, st.name, rec)
}

// decode reads a stored record, plain or encrypted.
func (st *Stream) decode(seq uint64, b []byte) (Record, error) {
	if !isEnvelope(b) {
		return decodeRecord(seq, b)
	}
	plain, err := st.store.keys.open(st.name, b)
	if err != nil {
		return Record{}, fmt.Errorf("shards: decrypt record %d of %s: %w", seq, st.name, err)
	}
	return decodeRecord(seq, plain)
}

// arrival reads only a stored record's arrival time, which an envelope
// keeps in clear text, so retention never needs the key.
func (st *Stream) arrival(seq uint64, b []byte) (int64, error) {
	if !isEnvelope(b) {
		r, err := decodeRecord(seq, b)
		return r.Arrival, err
	}
	e, err := parseEnvelope(b)
	if err != nil {
		return 0, fmt.Errorf("shards: record %d of %s: %w", seq, st.name, err)
	}
	return e.arrival, nil
}

// Encryption returns the KeyId new records of the stream are encrypted
// with, or "" when they are stored in plain text (EncryptionType NONE).
func (st *Stream) Encryption() string {
	if e := st.enc.Load(); e != nil {
		return e.keyID
	}
	return ""
}

// StartEncryption encrypts every record appended from now on with the key
// keyID names (StartStreamEncryption); records already stored stay as they
// are. On an encrypted stream it switches to the new key (rotation): old
// records keep naming their own key. The key must load now, so a typo
// fails here rather than on the next append.
func (st *Stream) StartEncryption(keyID string) error {
	name, err := KeyName(keyID)
	if err != nil {
		return err
	}
	if _, err := st.store.keys.get(name); err != nil {
		return fmt.Errorf("shards: start encryption of %s: %w", st.name, err)
	}
	return st.setEncryption(&encryption{keyID: keyID, name: name})
}

// StopEncryption stores records appended from now on in plain text
// (StopStreamEncryption). keyID must name the stream's current key; records
// already encrypted stay encrypted and still need their key to be read.
// Stopping a stream that is not encrypted does nothing.
func (st *Stream) StopEncryption(keyID string) error {
	name, err := KeyName(keyID)
	if err != nil {
		return err
	}
	cur := st.enc.Load()
	if cur == nil {
		return nil
	}
	if cur.name != name {
		return fmt.Errorf("%w: stream %s is encrypted with KeyId %q, not %q", ErrInvalidArgument, st.name, cur.keyID, keyID)
	}
	return st.setEncryption(nil)
}

// setEncryption persists the stream's encryption in stream.json, then
// applies it to new appends.
func (st *Stream) setEncryption(e *encryption) error {
	st.reshardMu.Lock()
	defer st.reshardMu.Unlock()
	st.mu.RLock()
	next, deleted := st.meta, st.deleted
	st.mu.RUnlock()
	if deleted {
		return fmt.Errorf("%w: %s", ErrStreamNotFound, st.name)
	}
	next.EncryptionKeyID = ""
	if e != nil {
		next.EncryptionKeyID = e.keyID
	}
	if err := writeMeta(st.store.opts.metaFS, st.dir, next); err != nil {
		return fmt.Errorf("shards: set encryption of %s: %w", st.name, err)
	}
	st.mu.Lock()
	st.meta = next
	st.enc.Store(e)
	st.mu.Unlock()
	if e != nil {
		st.store.log.Info().Str("stream", st.name).Str("key_id", e.keyID).Msg("new records will be encrypted")
	} else {
		st.store.log.Info().Str("stream", st.name).Msg("new records will be stored unencrypted")
	}
	return nil
}

// loadEncryption sets up the encryption stream.json records. A key that
// cannot be loaded now is reported but does not keep the stream closed:
// reads of plain records work, and appends fail until the key is back.
func (st *Stream) loadEncryption() error {
	id := st.meta.EncryptionKeyID
	if id == "" {
		return nil
	}
	name, err := KeyName(id)
	if err != nil {
		return fmt.Errorf("shards: stream %s: %s: encryption_key_id: %w", st.name, metaFile, err)
	}
	st.enc.Store(&encryption{keyID: id, name: name})
	if _, err := st.store.keys.get(name); err != nil {
		st.store.log.Error().Err(err).Str("stream", st.name).Msg("encryption key unavailable: appends to this stream fail until it is restored")
	}
	return nil
}
