package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/weir-gateway/weir/firmware-sim/payload"
)

// Envelope says how stream records wrap the device payload.
type Envelope uint8

// Envelope modes.
const (
	// EnvelopeAuto tries the raw payload first, then the JSON envelope.
	EnvelopeAuto Envelope = iota
	// EnvelopeRaw: the record data is the MQTT payload.
	EnvelopeRaw
	// EnvelopeJSON: the forwarder's {"id":..,"data":"<base64>",...}.
	EnvelopeJSON
)

// ErrUnknownEnvelope is returned by ParseEnvelope.
var ErrUnknownEnvelope = errors.New("verify: unknown envelope")

// ParseEnvelope accepts auto, raw or json.
func ParseEnvelope(s string) (Envelope, error) {
	switch s {
	case "auto", "":
		return EnvelopeAuto, nil
	case "raw":
		return EnvelopeRaw, nil
	case "json":
		return EnvelopeJSON, nil
	}
	return 0, fmt.Errorf("%w %q (want auto, raw or json)", ErrUnknownEnvelope, s)
}

// Decode extracts the simulator identity from one record's data.
func Decode(data []byte, env Envelope) (payload.Ident, error) {
	switch env {
	case EnvelopeRaw:
		return payload.Decode(data)
	case EnvelopeJSON:
		inner, err := unwrap(data)
		if err != nil {
			return payload.Ident{}, err
		}
		return payload.Decode(inner)
	}
	id, err := payload.Decode(data)
	if err == nil {
		return id, nil
	}
	if inner, uerr := unwrap(data); uerr == nil {
		if id, ierr := payload.Decode(inner); ierr == nil {
			return id, nil
		}
	}
	return payload.Ident{}, err
}

// unwrap pulls the payload out of a JSON envelope. The payload field is
// "data" (or "payload"): a base64 string, or, tolerated, the JSON value
// itself.
func unwrap(b []byte) ([]byte, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", payload.ErrNotSimulated, err)
	}
	for _, k := range []string{"data", "payload", "Data"} {
		raw, ok := env[k]
		if !ok {
			continue
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("%w: envelope %s: %v", payload.ErrNotSimulated, k, err)
			}
			if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
				return dec, nil
			}
			if dec, err := base64.RawStdEncoding.DecodeString(s); err == nil {
				return dec, nil
			}
			return []byte(s), nil
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%w: envelope without data", payload.ErrNotSimulated)
}
