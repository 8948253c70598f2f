package shards

import (
	"fmt"
	"slices"
	"strconv"
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

// FormatSeq renders a sequence number as Kinesis does: a decimal string.
// Readers must compare them as integers, never as strings.
func FormatSeq(seq uint64) string { return strconv.FormatUint(seq, 10) }

// ParseSeq parses a decimal sequence number.
func ParseSeq(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: sequence number %q", ErrInvalidArgument, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: sequence number %q", ErrInvalidArgument, s)
	}
	return v, nil
}
