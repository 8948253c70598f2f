package api

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// wireTime is a timestamp member (ApproximateArrivalTimestamp, Timestamp,
// StreamCreationTimestamp...) held as unix milliseconds. Its two encodings
// differ, which is the one real trap of the CBOR protocol:
//
//   - JSON 1.1: epoch seconds as a number with a fraction (1700000000.123).
//   - CBOR 1.1 (AWS SDK for Java v2, and so the KCL): CBOR tag 1 wrapping an
//     integer count of epoch *milliseconds* (SdkCborGenerator writes
//     Instant.toEpochMilli(); AwsCborProtocolFactory declares
//     UNIX_TIMESTAMP_MILLIS for payloads). RFC 8949 says tag 1 holds
//     seconds, so a spec-following CBOR library is off by 1000x
//     (aws-sdk-java-v2#4661). Responses must hold an integer: the SDK parses
//     the value's text with Long.parseLong, so 1.7e12 fails
//     (localstack#3134).
type wireTime int64

func timeOf(t time.Time) *wireTime {
	w := wireTime(t.UnixMilli())
	return &w
}

func msOf(ms int64) *wireTime {
	w := wireTime(ms)
	return &w
}

// Time converts back to a time.Time.
func (w wireTime) Time() time.Time { return time.UnixMilli(int64(w)) }

// appendJSON writes seconds.millis without going through a float, so the
// value is exact.
func (w wireTime) appendJSON(b []byte) []byte {
	ms := int64(w)
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	frac := ms % 1000
	b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return b
}

func (w wireTime) MarshalJSON() ([]byte, error) { return w.appendJSON(nil), nil }

func (w *wireTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(b)
	if len(b) > 1 && b[0] == '"' {
		// Some hand-written clients quote the number or send RFC 3339.
		s = string(b[1 : len(b)-1])
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			*w = wireTime(t.UnixMilli())
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("timestamp %s is not epoch seconds", s)
	}
	*w = wireTime(math.Round(f * 1000))
	return nil
}

func (w wireTime) MarshalCBOR() ([]byte, error) {
	return cborEnc.Marshal(cbor.Tag{Number: 1, Content: int64(w)})
}

func (w *wireTime) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0]>>5 == 6 { // major type 6: a tag
		var rt cbor.RawTag
		if err := cborDec.Unmarshal(b, &rt); err != nil {
			return err
		}
		if rt.Number != 1 {
			return fmt.Errorf("timestamp has CBOR tag %d, want 1", rt.Number)
		}
		b = rt.Content
	}
	var v any
	if err := cborDec.Unmarshal(b, &v); err != nil {
		return err
	}
	switch n := v.(type) {
	case uint64:
		if n > math.MaxInt64 {
			return fmt.Errorf("timestamp %d out of range", n)
		}
		*w = wireTime(n)
	case int64:
		*w = wireTime(n)
	case float64:
		// Not what the Java SDK sends, but a float here is still epoch
		// milliseconds in this protocol.
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return fmt.Errorf("timestamp %v is not a number of milliseconds", n)
		}
		*w = wireTime(math.Round(n))
	case nil:
	default:
		return fmt.Errorf("timestamp is a CBOR %T, want epoch milliseconds", v)
	}
	return nil
}
