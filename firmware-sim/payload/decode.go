package payload

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Ident is what verification needs from a payload.
type Ident struct {
	Device string
	Seq    uint64
	TS     int64 // unix milliseconds
	Format Format
}

type identFields struct {
	Device *string `json:"device" cbor:"device"`
	Seq    *uint64 `json:"seq" cbor:"seq"`
	TS     int64   `json:"ts" cbor:"ts"`
}

// Decode recognises any of the three formats by their first bytes and
// returns the device name and sequence number. Anything else, including a
// JSON or CBOR object without "device" and "seq", is ErrNotSimulated.
func Decode(b []byte) (Ident, error) {
	switch {
	case len(b) >= 6 && string(b[:4]) == binaryMagic:
		return decodeBinary(b)
	case len(bytes.TrimLeft(b, " \t\r\n")) > 0 && bytes.TrimLeft(b, " \t\r\n")[0] == '{':
		var f identFields
		if err := json.Unmarshal(b, &f); err != nil {
			return Ident{}, fmt.Errorf("%w: json: %v", ErrNotSimulated, err)
		}
		return identOf(f, JSON)
	case len(b) > 0 && b[0]>>5 == 5: // CBOR major type 5: map
		var f identFields
		if err := cbor.Unmarshal(b, &f); err != nil {
			return Ident{}, fmt.Errorf("%w: cbor: %v", ErrNotSimulated, err)
		}
		return identOf(f, CBOR)
	}
	return Ident{}, ErrNotSimulated
}

func identOf(f identFields, fm Format) (Ident, error) {
	if f.Device == nil || f.Seq == nil || *f.Device == "" {
		return Ident{}, fmt.Errorf("%w: no device/seq fields", ErrNotSimulated)
	}
	return Ident{Device: *f.Device, Seq: *f.Seq, TS: f.TS, Format: fm}, nil
}

func decodeBinary(b []byte) (Ident, error) {
	if b[4] != binaryVersion {
		return Ident{}, fmt.Errorf("%w: binary version %d", ErrNotSimulated, b[4])
	}
	n := int(b[5])
	if len(b) < 6+n+16 {
		return Ident{}, fmt.Errorf("%w: short binary header", ErrNotSimulated)
	}
	return Ident{
		Device: string(b[6 : 6+n]),
		Seq:    binary.BigEndian.Uint64(b[6+n:]),
		TS:     int64(binary.BigEndian.Uint64(b[14+n:])),
		Format: Binary,
	}, nil
}
