package forwarder

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
)

// KPL aggregated record format (amazon-kinesis-producer aggregation-format.md):
//
//	F3 89 9A C2 | protobuf AggregatedRecord | MD5(protobuf) (16 bytes)
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag { required string key = 1; optional string value = 2; }
//
// The forwarder only packs records of one partition key, so its aggregates
// have a one-entry key table and every record points at index 0. The
// protobuf is written by hand: it is three field types, and a generated
// dependency would be larger than this file.

// kplMagic starts every aggregated record.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// kplOverhead is the fixed cost of an aggregate: magic and MD5 trailer.
const kplOverhead = 4 + md5.Size

// ErrBadAggregate says bytes that start with the KPL magic do not decode.
var ErrBadAggregate = errors.New("forwarder: malformed KPL aggregated record")

// UserRecord is one record inside a KPL aggregate.
type UserRecord struct {
	PartitionKey    string
	ExplicitHashKey string // "" if none
	Data            []byte
}

// protobuf wire types and the tags used here (field<<3 | wiretype).
const (
	wireVarint = 0
	wireI64    = 1
	wireBytes  = 2
	wireI32    = 5

	tagKeyTable  = 1<<3 | wireBytes
	tagRecords   = 3<<3 | wireBytes
	tagKeyIndex  = 1<<3 | wireVarint
	tagData      = 3<<3 | wireBytes
	maxVarintLen = binary.MaxVarintLen64
)

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// kplRecordLen is the encoded size of one Record message holding n data
// bytes: key index 0 (2 bytes) plus the data field.
func kplRecordLen(n int) int { return 2 + 1 + varintLen(uint64(n)) + n }

// kplAggregateSize is the size of the aggregate EncodeAggregate would build.
func kplAggregateSize(key string, datas [][]byte) int {
	n := kplOverhead + 1 + varintLen(uint64(len(key))) + len(key)
	for _, d := range datas {
		n += kplAddCost(len(d))
	}
	return n
}

// kplAddCost is what one more record of n data bytes adds to an aggregate.
func kplAddCost(n int) int {
	r := kplRecordLen(n)
	return 1 + varintLen(uint64(r)) + r
}

// EncodeAggregate packs datas, in order, into one KPL aggregated record
// whose user records all carry partition key key.
func EncodeAggregate(key string, datas [][]byte) []byte {
	out := make([]byte, 0, kplAggregateSize(key, datas))
	out = append(out, kplMagic...)
	start := len(out)
	out = append(out, tagKeyTable)
	out = binary.AppendUvarint(out, uint64(len(key)))
	out = append(out, key...)
	for _, d := range datas {
		out = append(out, tagRecords)
		out = binary.AppendUvarint(out, uint64(kplRecordLen(len(d))))
		out = append(out, tagKeyIndex, 0, tagData)
		out = binary.AppendUvarint(out, uint64(len(d)))
		out = append(out, d...)
	}
	sum := md5.Sum(out[start:])
	return append(out, sum[:]...)
}

// IsAggregate reports whether b starts with the KPL magic bytes.
func IsAggregate(b []byte) bool { return bytes.HasPrefix(b, kplMagic) }

// DecodeAggregate returns the user records in b, in order. A record that
// is not aggregated (no magic) comes back as itself with outerKey, as the
// KCL and the aws-kinesis-agg de-aggregators do. The MD5 is checked.
func DecodeAggregate(b []byte, outerKey string) ([]UserRecord, error) {
	if !IsAggregate(b) {
		return []UserRecord{{PartitionKey: outerKey, Data: b}}, nil
	}
	if len(b) < kplOverhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than magic and checksum", ErrBadAggregate, len(b))
	}
	pb := b[len(kplMagic) : len(b)-md5.Size]
	if sum := md5.Sum(pb); !bytes.Equal(sum[:], b[len(b)-md5.Size:]) {
		return nil, fmt.Errorf("%w: MD5 checksum mismatch", ErrBadAggregate)
	}
	var (
		keys, ehks []string
		recs       []UserRecord
		idx        []struct{ key, ehk uint64 }
		hasEHK     []bool
	)
	err := walkFields(pb, func(field int, wt int, v uint64, raw []byte) error {
		if wt != wireBytes {
			return nil // unknown scalar field: skip, as protobuf does
		}
		switch field {
		case 1:
			keys = append(keys, string(raw))
		case 2:
			ehks = append(ehks, string(raw))
		case 3:
			var r UserRecord
			var ki, ei uint64
			var haveKey, haveData, haveEHK bool
			err := walkFields(raw, func(f int, wt int, v uint64, raw []byte) error {
				switch {
				case f == 1 && wt == wireVarint:
					ki, haveKey = v, true
				case f == 2 && wt == wireVarint:
					ei, haveEHK = v, true
				case f == 3 && wt == wireBytes:
					r.Data, haveData = raw, true
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !haveKey || !haveData {
				return fmt.Errorf("%w: record %d lacks a required field", ErrBadAggregate, len(recs))
			}
			recs = append(recs, r)
			idx = append(idx, struct{ key, ehk uint64 }{ki, ei})
			hasEHK = append(hasEHK, haveEHK)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if idx[i].key >= uint64(len(keys)) {
			return nil, fmt.Errorf("%w: record %d: partition key index %d out of %d", ErrBadAggregate, i, idx[i].key, len(keys))
		}
		recs[i].PartitionKey = keys[idx[i].key]
		if hasEHK[i] {
			if idx[i].ehk >= uint64(len(ehks)) {
				return nil, fmt.Errorf("%w: record %d: explicit hash key index %d out of %d", ErrBadAggregate, i, idx[i].ehk, len(ehks))
			}
			recs[i].ExplicitHashKey = ehks[idx[i].ehk]
		}
	}
	return recs, nil
}

// walkFields calls fn for every field of one protobuf message: v is the
// value of varint fields, raw the payload of length-delimited ones.
func walkFields(b []byte, fn func(field, wt int, v uint64, raw []byte) error) error {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 || n > maxVarintLen {
			return fmt.Errorf("%w: bad field tag", ErrBadAggregate)
		}
		b = b[n:]
		field, wt := int(tag>>3), int(tag&7)
		if field == 0 {
			return fmt.Errorf("%w: field number 0", ErrBadAggregate)
		}
		var (
			v   uint64
			raw []byte
		)
		switch wt {
		case wireVarint:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return fmt.Errorf("%w: bad varint in field %d", ErrBadAggregate, field)
			}
			b = b[n:]
		case wireI64, wireI32:
			size := 8
			if wt == wireI32 {
				size = 4
			}
			if len(b) < size {
				return fmt.Errorf("%w: truncated field %d", ErrBadAggregate, field)
			}
			b = b[size:]
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return fmt.Errorf("%w: bad length of field %d", ErrBadAggregate, field)
			}
			raw = b[n : n+int(l)]
			b = b[n+int(l):]
		default:
			return fmt.Errorf("%w: unsupported wire type %d in field %d", ErrBadAggregate, wt, field)
		}
		if err := fn(field, wt, v, raw); err != nil {
			return err
		}
	}
	return nil
}
