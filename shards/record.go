package shards

import (
	"fmt"
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
