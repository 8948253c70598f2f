package shards

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// UserProperty is an MQTT v5 user property carried with a record.
type UserProperty struct {
	_     struct{} `cbor:",toarray"`
	Key   string   `json:"key"`
	Value string   `json:"value"`
}

// Record is one stored record. Seq is assigned by the shard; everything
// else is what the producer sent and when it arrived.
type Record struct {
	Seq      uint64
	Key      string
	Data     []byte
	Arrival  int64 // unix milliseconds
	Topic    string
	ClientID string
	QoS      byte
	Props    []UserProperty
}

// MaxKeyLen is the longest partition key Kinesis accepts, in characters.
const MaxKeyLen = 256

// validKey reports whether k is a Kinesis partition key: 1-256 Unicode
// characters.
func validKey(k string) error {
	if k == "" {
		return fmt.Errorf("%w: partition key is empty", ErrInvalidKey)
	}
	if !utf8.ValidString(k) {
		return fmt.Errorf("%w: partition key is not valid UTF-8", ErrInvalidKey)
	}
	if n := utf8.RuneCountInString(k); n > MaxKeyLen {
		return fmt.Errorf("%w: partition key has %d characters, at most %d", ErrInvalidKey, n, MaxKeyLen)
	}
	return nil
}

// storedRecord is the CBOR body of a record inside a wal frame. An array,
// not a map, keeps field names out of every record; new fields are only
// ever appended, so older records still decode.
type storedRecord struct {
	_        struct{} `cbor:",toarray"`
	Key      string
	Data     []byte
	Arrival  int64
	Topic    string
	ClientID string
	QoS      byte
	Props    []UserProperty
}

var (
	encMode, _ = cbor.CoreDetEncOptions().EncMode()
	// bufEncMode encodes the same way into a caller's buffer (crypt.go).
	bufEncMode, _ = cbor.CoreDetEncOptions().UserBufferEncMode()
	decMode, _    = cbor.DecOptions{
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 16,
	}.DecMode()
)

// appendRecord appends r's storedRecord CBOR to dst: the bytes
// encMode.Marshal produces (FuzzAppendRecord holds it to that), without
// reflection or an allocation of its own. Writing each publish's record
// is on the ingest hot path; decoding stays with the library.
func appendRecord(dst []byte, r *Record) []byte {
	// Each head takes at most 9 bytes: grow once, for the whole record.
	size := 1 + 4*9 + 2*9 + len(r.Key) + len(r.Data) + len(r.Topic) + len(r.ClientID)
	for _, p := range r.Props {
		size += 1 + 2*9 + len(p.Key) + len(p.Value)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, 0x87) // array of the 7 fields below
	dst = appendCBORString(dst, 3, r.Key)
	if r.Data == nil {
		dst = append(dst, cborNull)
	} else {
		dst = appendCBORHead(dst, 2, uint64(len(r.Data)))
		dst = append(dst, r.Data...)
	}
	if r.Arrival >= 0 {
		dst = appendCBORHead(dst, 0, uint64(r.Arrival))
	} else {
		dst = appendCBORHead(dst, 1, uint64(-1-r.Arrival))
	}
	dst = appendCBORString(dst, 3, r.Topic)
	dst = appendCBORString(dst, 3, r.ClientID)
	dst = appendCBORHead(dst, 0, uint64(r.QoS))
	if r.Props == nil {
		return append(dst, cborNull)
	}
	dst = appendCBORHead(dst, 4, uint64(len(r.Props)))
	for _, p := range r.Props {
		dst = append(dst, 0x82)
		dst = appendCBORString(dst, 3, p.Key)
		dst = appendCBORString(dst, 3, p.Value)
	}
	return dst
}

const cborNull = 0xf6

func appendCBORString(dst []byte, major byte, s string) []byte {
	return append(appendCBORHead(dst, major, uint64(len(s))), s...)
}

// appendCBORHead appends a data item head in its shortest form (RFC 8949
// §4.2.1, core deterministic encoding).
func appendCBORHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= 0xff:
		return append(dst, m|24, byte(n))
	case n <= 0xffff:
		return append(dst, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(dst, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(dst, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func encodeRecord(r *Record) ([]byte, error) {
	return encMode.Marshal(storedOf(r))
}

func storedOf(r *Record) storedRecord {
	return storedRecord{
		Key: r.Key, Data: r.Data, Arrival: r.Arrival, Topic: r.Topic,
		ClientID: r.ClientID, QoS: r.QoS, Props: r.Props,
	}
}

func decodeRecord(seq uint64, b []byte) (Record, error) {
	var s storedRecord
	if err := decMode.Unmarshal(b, &s); err != nil {
		return Record{}, fmt.Errorf("shards: decode record %d: %w", seq, err)
	}
	return Record{Seq: seq, Key: s.Key, Data: s.Data, Arrival: s.Arrival, Topic: s.Topic,
		ClientID: s.ClientID, QoS: s.QoS, Props: s.Props}, nil
}

// API sequence numbers (format v2, see FORMAT.md) are 33 decimal digits:
//
//	"2" | shard number (12 digits) | index in the shard (20 digits)
//
// so that they are unique in a stream, ordered within a shard, compare the
// same as numbers and as strings, and say which shard they belong to.
// Inside weir a record's position stays its shard's log index; only the
// API string carries the shard. Format v1 numbers (the bare index, at most
// 20 digits) are still accepted for the records written before a data
// directory was migrated (ShardInfo.V1LastSeq).
const (
	seqVersion    = '2'
	seqShardLen   = 12
	seqIndexLen   = 20
	seqLen        = 1 + seqShardLen + seqIndexLen
	legacySeqMax  = 20 // digits of a v1 number (a uint64)
	shardIDPrefix = "shardId-"
)

// ShardNumber is the number in a shard id ("shardId-000000000007" → 7), or
// -1 when id is not shaped as the store names shards.
func ShardNumber(id string) int64 {
	d, ok := strings.CutPrefix(id, shardIDPrefix)
	if !ok || len(d) != seqShardLen {
		return -1
	}
	n, err := strconv.ParseUint(d, 10, 64)
	if err != nil {
		return -1
	}
	return int64(n)
}

// FormatSeq renders the record at index idx of shard shardID as its API
// sequence number. shardID must be an id the store gave (shardId- and 12
// digits): any other is a bug that would give a valid-looking number of
// another shard, so it panics instead.
func FormatSeq(shardID string, idx uint64) string {
	return string(AppendSeq(make([]byte, 0, seqLen), shardID, idx))
}

// AppendSeq appends FormatSeq(shardID, idx) to b.
func AppendSeq(b []byte, shardID string, idx uint64) []byte {
	b = append(b, seqVersion)
	if ShardNumber(shardID) < 0 {
		panic(fmt.Sprintf("shards: sequence number of %q, not a shard id", shardID))
	}
	b = append(b, shardID[len(shardIDPrefix):]...)
	var digits [seqIndexLen]byte
	v := idx
	for i := seqIndexLen - 1; i >= 0; i-- {
		digits[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, digits[:]...)
}

// DecodeSeq reads an API sequence number without judging where it is used:
// a v2 number gives its shard's number and index; a legacy (v1) number
// gives shard -1 and the index. Anything else is ErrInvalidArgument.
func DecodeSeq(s string) (shard int64, idx uint64, err error) {
	bad := func() (int64, uint64, error) {
		return 0, 0, fmt.Errorf("%w: sequence number %q", ErrInvalidArgument, s)
	}
	if s == "" || (len(s) > 1 && s[0] == '0') || !allDigits(s) {
		return bad()
	}
	switch {
	case len(s) <= legacySeqMax:
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return bad()
		}
		return -1, v, nil
	case len(s) == seqLen && s[0] == seqVersion:
		sh, err1 := strconv.ParseUint(s[1:1+seqShardLen], 10, 64)
		v, err2 := strconv.ParseUint(s[1+seqShardLen:], 10, 64)
		if err1 != nil || err2 != nil {
			return bad()
		}
		return int64(sh), v, nil
	}
	return bad()
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// SeqError says why a well-formed sequence number cannot be used with a
// shard. It unwraps to ErrInvalidArgument, Kinesis's answer.
type SeqError struct {
	Seq    string
	Shard  string // the shard it was used with
	Reason string // e.g. "It encodes shardId-000000000001, while it was used in a call to a shard with shardId-000000000000"
}

func (e *SeqError) Error() string {
	return fmt.Sprintf("shards: sequence number %s used with %s: %s", e.Seq, e.Shard, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalidArgument) match.
func (e *SeqError) Unwrap() error { return ErrInvalidArgument }

// ParseSeq parses a sequence number given for shard info and returns its
// index in that shard. A v2 number must encode info's shard; a legacy
// number is accepted only for records written before the migration to v2
// (1 ≤ n ≤ info.V1LastSeq). Failures wrap ErrInvalidArgument; those of a
// well-formed number are a *SeqError.
func ParseSeq(info ShardInfo, s string) (uint64, error) {
	sh, idx, err := DecodeSeq(s)
	if err != nil {
		return 0, err
	}
	if sh < 0 {
		if idx < 1 || idx > info.V1LastSeq {
			return 0, &SeqError{Seq: s, Shard: info.ID, Reason: fmt.Sprintf(
				"It is a version 1 sequence number, accepted only for the records %s held before its data directory moved to version 2 (up to %d)", info.ID, info.V1LastSeq)}
		}
		return idx, nil
	}
	if want := ShardNumber(info.ID); sh != want {
		return 0, &SeqError{Seq: s, Shard: info.ID, Reason: fmt.Sprintf(
			"It encodes shardId-%012d, while it was used in a call to a shard with %s", sh, info.ID)}
	}
	return idx, nil
}

// FormatIndex renders a record's index in its shard as a decimal string:
// the position in formats that name the shard beside it (forwarder
// envelopes, S3 lines), which keep their own format and not the API's.
func FormatIndex(idx uint64) string { return strconv.FormatUint(idx, 10) }

// ParseIndex parses FormatIndex's output.
func ParseIndex(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: index %q", ErrInvalidArgument, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: index %q", ErrInvalidArgument, s)
	}
	return v, nil
}
