package payload

import (
	"errors"
	"fmt"
)

// Format selects the payload encoding.
type Format uint8

// The payload formats. The zero value is JSON.
const (
	JSON Format = iota
	CBOR
	Binary
)

// ErrUnknownFormat is returned by ParseFormat.
var ErrUnknownFormat = errors.New("payload: unknown format")

// ErrNotSimulated means the bytes are not a payload made by this package.
var ErrNotSimulated = errors.New("payload: not a simulator payload")

// ParseFormat accepts "json", "cbor" or "binary".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json", "":
		return JSON, nil
	case "cbor":
		return CBOR, nil
	case "binary", "bin":
		return Binary, nil
	}
	return 0, fmt.Errorf("%w %q (want json, cbor or binary)", ErrUnknownFormat, s)
}

func (f Format) String() string {
	switch f {
	case JSON:
		return "json"
	case CBOR:
		return "cbor"
	case Binary:
		return "binary"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// MarshalText makes Format usable in JSON and YAML.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText parses the names accepted by ParseFormat.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}
