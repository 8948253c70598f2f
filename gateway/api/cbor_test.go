package api

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// javaCBOR builds request bodies the way the AWS SDK for Java v2 does
// (Jackson's CBORGenerator under SdkCborGenerator): objects and arrays as
// indefinite-length maps/arrays closed by 0xFF, member names as definite
// text strings, SdkBytes as byte strings, integers in their shortest form,
// and Instants as tag 1 around an integer of epoch milliseconds.
type javaCBOR struct{ b []byte }

func (c *javaCBOR) head(major byte, n uint64) {
	m := major << 5
	switch {
	case n < 24:
		c.b = append(c.b, m|byte(n))
	case n <= 0xff:
		c.b = append(c.b, m|24, byte(n))
	case n <= 0xffff:
		c.b = append(c.b, m|25)
		c.b = binary.BigEndian.AppendUint16(c.b, uint16(n))
	case n <= 0xffffffff:
		c.b = append(c.b, m|26)
		c.b = binary.BigEndian.AppendUint32(c.b, uint32(n))
	default:
		c.b = append(c.b, m|27)
		c.b = binary.BigEndian.AppendUint64(c.b, n)
	}
}

func (c *javaCBOR) object() *javaCBOR { c.b = append(c.b, 0xbf); return c }
func (c *javaCBOR) array() *javaCBOR  { c.b = append(c.b, 0x9f); return c }
func (c *javaCBOR) end() *javaCBOR    { c.b = append(c.b, 0xff); return c }
func (c *javaCBOR) str(s string) *javaCBOR {
	c.head(3, uint64(len(s)))
	c.b = append(c.b, s...)
	return c
}
func (c *javaCBOR) blob(b []byte) *javaCBOR {
	c.head(2, uint64(len(b)))
	c.b = append(c.b, b...)
	return c
}
func (c *javaCBOR) int(n uint64) *javaCBOR { c.head(0, n); return c }
func (c *javaCBOR) instant(t time.Time) *javaCBOR {
	c.head(6, 1)
	return c.int(uint64(t.UnixMilli()))
}

// post sends a CBOR request and returns status, headers and body.
func (e *env) postCBOR(op string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-cbor-1.1")
	req.Header.Set("X-Amz-Target", kinesisPrefix+op)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/local/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (e *env) cborOK(op string, body []byte, out any) {
	e.t.Helper()
	code, h, b := e.postCBOR(op, body)
	if code != http.StatusOK {
		e.t.Fatalf("%s: HTTP %d %x", op, code, b)
	}
	if ct := h.Get("Content-Type"); ct != contentTypeCBOR {
		e.t.Fatalf("%s answered in %q", op, ct)
	}
	if err := cbor.Unmarshal(b, out); err != nil {
		e.t.Fatalf("%s: decode %x: %v", op, b, err)
	}
}

func TestCBORRoundTrip(t *testing.T) {
	e := newEnv(t, envOptions{})
	var empty map[string]any
	e.cborOK("CreateStream", new(javaCBOR).object().str("StreamName").str("cb").str("ShardCount").int(1).end().b, &empty)

	put := func(recs ...[]byte) {
		t.Helper()
		c := new(javaCBOR).object().str("StreamName").str("cb").str("Records").array()
		for i, r := range recs {
			c.object().str("Data").blob(r).str("PartitionKey").str(string(rune('a' + i))).end()
		}
		c.end().end()
		var out struct {
			FailedRecordCount int
			Records           []struct{ SequenceNumber, ShardId string }
		}
		e.cborOK("PutRecords", c.b, &out)
		if out.FailedRecordCount != 0 || len(out.Records) != len(recs) || out.Records[0].SequenceNumber == "" {
			t.Fatalf("PutRecords answer %+v", out)
		}
	}
	put([]byte{0x00, 0xff, 0x10}, []byte("early"))
	e.clock.Advance(10 * time.Second)
	later := e.clock.Now()
	put([]byte("late-1"), []byte{0xde, 0xad, 0xbe, 0xef})

	// AT_TIMESTAMP with a Java-style timestamp: read as milliseconds it
	// selects the second batch; read as seconds it would be far in the
	// future and refused.
	var it struct{ ShardIterator string }
	e.cborOK("GetShardIterator", new(javaCBOR).object().str("StreamName").str("cb").str("ShardId").str("shardId-000000000000").
		str("ShardIteratorType").str("AT_TIMESTAMP").str("Timestamp").instant(later).end().b, &it)

	code, _, raw := e.postCBOR("GetRecords", new(javaCBOR).object().str("ShardIterator").str(it.ShardIterator).str("Limit").int(100).end().b)
	if code != http.StatusOK {
		t.Fatalf("GetRecords: %d %x", code, raw)
	}
	var out struct {
		Records []struct {
			SequenceNumber              string
			Data                        cbor.RawMessage
			PartitionKey                string
			ApproximateArrivalTimestamp cbor.RawMessage
		}
		NextShardIterator  string
		MillisBehindLatest int64
	}
	if err := cbor.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 2 || out.NextShardIterator == "" {
		t.Fatalf("GetRecords answer %+v", out)
	}
	for i, want := range [][]byte{[]byte("late-1"), {0xde, 0xad, 0xbe, 0xef}} {
		r := out.Records[i]
		// Data must be a CBOR byte string (major type 2), as Jackson
		// reports it as an embedded object the SDK takes as raw bytes.
		if r.Data[0]>>5 != 2 {
			t.Fatalf("record %d Data has major type %d, want a byte string", i, r.Data[0]>>5)
		}
		var d []byte
		_ = cbor.Unmarshal(r.Data, &d)
		if !bytes.Equal(d, want) {
			t.Fatalf("record %d data %x, want %x", i, d, want)
		}
		// The timestamp: tag 1 (0xC1) and an unsigned integer of epoch
		// milliseconds; the SDK parses its text with Long.parseLong.
		ts := r.ApproximateArrivalTimestamp
		if ts[0] != 0xc1 || ts[1]>>5 != 0 {
			t.Fatalf("record %d timestamp %x is not tag 1 around an integer", i, ts)
		}
		var tag cbor.Tag
		_ = cbor.Unmarshal(ts, &tag)
		if ms, ok := tag.Content.(uint64); !ok || int64(ms) != later.UnixMilli() {
			t.Fatalf("record %d timestamp %v, want %d ms", i, tag.Content, later.UnixMilli())
		}
	}

	// Errors come back in CBOR too, typed by __type and X-Amzn-ErrorType.
	code, h, raw := e.postCBOR("GetRecords", new(javaCBOR).object().str("ShardIterator").str("bogus").end().b)
	var eb struct {
		Type    string `cbor:"__type"`
		Message string `cbor:"message"`
	}
	if err := cbor.Unmarshal(raw, &eb); err != nil || code != 400 || eb.Type != errInvalidArgument ||
		h.Get("X-Amzn-ErrorType") != errInvalidArgument || h.Get("Content-Type") != contentTypeCBOR {
		t.Fatalf("CBOR error: %d %v %+v %v", code, h, eb, err)
	}
	code, _, raw = e.postCBOR("PutRecord", []byte{0xbf, 0x63})
	if err := cbor.Unmarshal(raw, &eb); err != nil || code != 400 || eb.Type != errSerialization {
		t.Fatalf("truncated CBOR: %d %+v %v", code, eb, err)
	}
}

func TestWireTime(t *testing.T) {
	ms := int64(1700000000123)
	j, _ := wireTime(ms).MarshalJSON()
	if string(j) != "1700000000.123" {
		t.Fatalf("JSON %s", j)
	}
	for _, in := range []string{"1700000000.123", `"1700000000.123"`, `"2023-11-14T22:13:20.123Z"`} {
		var w wireTime
		if err := w.UnmarshalJSON([]byte(in)); err != nil || int64(w) != ms {
			t.Errorf("UnmarshalJSON(%s) = %d, %v", in, w, err)
		}
	}
	var w wireTime
	if err := w.UnmarshalJSON([]byte(`"soon"`)); err == nil {
		t.Error("a word parsed as a timestamp")
	}
	c, _ := wireTime(ms).MarshalCBOR()
	for _, enc := range [][]byte{c, func() []byte { b, _ := cbor.Marshal(ms); return b }(), func() []byte { b, _ := cbor.Marshal(float64(ms)); return b }()} {
		var w wireTime
		if err := w.UnmarshalCBOR(enc); err != nil || int64(w) != ms {
			t.Errorf("UnmarshalCBOR(%x) = %d, %v", enc, w, err)
		}
	}
	bad, _ := cbor.Marshal(cbor.Tag{Number: 0, Content: "2023-11-14T22:13:20Z"})
	if err := w.UnmarshalCBOR(bad); err == nil {
		t.Error("tag 0 accepted as epoch millis")
	}
}
