package s3sink_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/shards"
)

var (
	formats      = []string{s3sink.FormatJSONL, s3sink.FormatRaw}
	compressions = []string{s3sink.CompressionGzip, s3sink.CompressionZstd, s3sink.CompressionNone}
	src          = s3sink.Source{Gateway: "gw-1", Stream: "telemetry", Shard: "shardId-000000000002"}
)

func encode(t testing.TB, format, compression string, recs []*shards.Record) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s3sink.Encode(&b, format, compression, src, recs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	recs := telemetry(500, 7, 100)
	recs = append(recs, &shards.Record{Seq: 10_000, Key: "k", Arrival: baseArrival, Data: []byte{}},
		&shards.Record{Seq: 10_001, Key: strings.Repeat("ключ", 64), Arrival: baseArrival + 1, Data: bytes.Repeat([]byte{0, 0xff, '\n'}, 100_000)})
	for _, f := range formats {
		for _, c := range compressions {
			t.Run(f+"/"+c, func(t *testing.T) {
				obj := encode(t, f, c, recs)
				got, err := s3sink.Decode(bytes.NewReader(obj), f, c)
				if err != nil {
					t.Fatal(err)
				}
				sameRecords(t, got, recs)
				// The compression is recognised from the bytes too.
				got, err = s3sink.Decode(bytes.NewReader(obj), f, "")
				if err != nil {
					t.Fatal(err)
				}
				sameRecords(t, got, recs)
			})
		}
	}
}

// TestLineMatchesEnvelope holds the jsonl line to the forwarder's JSON
// envelope: same fields, tags and types, and the same bytes for the same
// record, so one consumer reads both.
func TestLineMatchesEnvelope(t *testing.T) {
	lt, et := reflect.TypeFor[s3sink.Line](), reflect.TypeFor[forwarder.Envelope]()
	if lt.NumField() != et.NumField() {
		t.Fatalf("Line has %d fields, Envelope %d", lt.NumField(), et.NumField())
	}
	for i := range lt.NumField() {
		l, e := lt.Field(i), et.Field(i)
		if l.Name != e.Name || l.Tag != e.Tag || l.Type != e.Type {
			t.Errorf("field %d: Line %s %s `%s`, Envelope %s %s `%s`", i, l.Name, l.Type, l.Tag, e.Name, e.Type, e.Tag)
		}
	}
	if s3sink.TimeFormat != forwarder.TimeFormat {
		t.Errorf("TimeFormat %q, forwarder's %q", s3sink.TimeFormat, forwarder.TimeFormat)
	}
	recs := telemetry(6, 2, 1)
	lines := strings.Split(strings.TrimSuffix(string(encode(t, s3sink.FormatJSONL, s3sink.CompressionNone, recs)), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("%d lines for %d records", len(lines), len(recs))
	}
	for i, r := range recs {
		want, err := json.Marshal(forwarder.NewEnvelope(src.Gateway, src.Stream, src.Shard, r))
		if err != nil {
			t.Fatal(err)
		}
		if lines[i] != string(want) {
			t.Errorf("line %d:\n%s\nenvelope:\n%s", i, lines[i], want)
		}
	}
}

// TestStandardToolsDecompress checks objects with Debian's gzip and zstd.
func TestStandardToolsDecompress(t *testing.T) {
	recs := telemetry(300, 5, 1)
	for _, f := range formats {
		plain := encode(t, f, s3sink.CompressionNone, recs)
		for c, tool := range map[string][]string{s3sink.CompressionGzip: {"gzip", "-dc"}, s3sink.CompressionZstd: {"zstd", "-dcq"}} {
			path := filepath.Join(t.TempDir(), "obj")
			if err := os.WriteFile(path, encode(t, f, c, recs), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tool[0], append(tool[1:], path)...).Output()
			if err != nil {
				t.Fatalf("%s %s: %v", f, tool, err)
			}
			if !bytes.Equal(out, plain) {
				t.Errorf("%s: %s gives %d bytes, want the %d of the uncompressed object", f, tool[0], len(out), len(plain))
			}
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	long := &shards.Record{Seq: 1, Key: "k", Topic: strings.Repeat("t", 70_000)}
	var b bytes.Buffer
	err := s3sink.Encode(&b, s3sink.FormatRaw, s3sink.CompressionGzip, src, []*shards.Record{long})
	if !errors.Is(err, s3sink.ErrInvalidObject) || b.Len() != 0 {
		t.Errorf("70000-byte topic in raw: %v, %d bytes written", err, b.Len())
	}
	if err := s3sink.Encode(&b, "csv", s3sink.CompressionNone, src, nil); !errors.Is(err, s3sink.ErrInvalidObject) {
		t.Errorf("format csv: %v", err)
	}
	if err := s3sink.Encode(&b, s3sink.FormatJSONL, "lz4", src, nil); !errors.Is(err, s3sink.ErrInvalidObject) {
		t.Errorf("compression lz4: %v", err)
	}
}

// TestRawCorruption damages a raw object in one place at a time; each
// decode stops at the damaged record with a CorruptError saying where,
// after returning the records before it.
func TestRawCorruption(t *testing.T) {
	recs := telemetry(3, 1, 1)
	obj := encode(t, s3sink.FormatRaw, s3sink.CompressionNone, recs)
	second := 8 + 8 + int(binary.BigEndian.Uint32(obj[8:])) // offset of record 2
	cases := []struct {
		name   string
		damage func([]byte) []byte
		before int // records decoded before the damage
	}{
		{"bad_magic", func(b []byte) []byte { b[3] ^= 1; return b }, 0},
		{"empty", func(b []byte) []byte { return b[:0] }, 0},
		{"bad_checksum", func(b []byte) []byte { b[second+8+20] ^= 0x40; return b }, 1},
		{"bad_length", func(b []byte) []byte { binary.BigEndian.PutUint32(b[second:], 3); return b }, 1},
		{"huge_length", func(b []byte) []byte { binary.BigEndian.PutUint32(b[second:], 0xffffffff); return b }, 1},
		{"torn_header", func(b []byte) []byte { return b[:second+5] }, 1},
		{"torn_last_record", func(b []byte) []byte { return b[:len(b)-1] }, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s3sink.Decode(bytes.NewReader(c.damage(bytes.Clone(obj))), s3sink.FormatRaw, s3sink.CompressionNone)
			var ce *s3sink.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, s3sink.ErrCorrupt) {
				t.Fatalf("err %v, want a CorruptError", err)
			}
			if len(got) != c.before || ce.Record != c.before {
				t.Errorf("%d records then error at record %d, want %d: %v", len(got), ce.Record, c.before, err)
			}
			if c.before == 1 && ce.Offset != int64(second) {
				t.Errorf("offset %d, want %d", ce.Offset, second)
			}
		})
	}
}

func TestJSONLCorruption(t *testing.T) {
	obj := encode(t, s3sink.FormatJSONL, s3sink.CompressionGzip, telemetry(50, 2, 1))
	for name, b := range map[string][]byte{
		"truncated_gzip": obj[:len(obj)/2],
		"not_json":       []byte("{\"seq\":\"1\"}\nnot json\n"),
		"bad_seq":        []byte(`{"seq":"01","ts":"2026-01-01T00:00:00.000Z"}` + "\n"),
		"bad_ts":         []byte(`{"seq":"1","ts":"yesterday"}` + "\n"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s3sink.Decode(bytes.NewReader(b), s3sink.FormatJSONL, ""); !errors.Is(err, s3sink.ErrCorrupt) {
				t.Errorf("err %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzDecodeRaw feeds arbitrary bytes to the raw decoder: it must return
// records or an error wrapping ErrCorrupt, never panic, and whatever it
// returns must encode back to the bytes it came from.
func FuzzDecodeRaw(f *testing.F) {
	f.Add(encode(f, s3sink.FormatRaw, s3sink.CompressionNone, telemetry(3, 2, 1)))
	f.Add(encode(f, s3sink.FormatRaw, s3sink.CompressionNone, []*shards.Record{{Seq: 1, Key: "k", Props: []shards.UserProperty{{Key: "a", Value: "b"}}}}))
	f.Add([]byte("WEIRRAW\x01"))
	f.Add([]byte("WEIRRAW\x01\x00\x00\x00\x19\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := s3sink.Decode(bytes.NewReader(b), s3sink.FormatRaw, s3sink.CompressionNone)
		if err != nil {
			if !errors.Is(err, s3sink.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		var again bytes.Buffer
		if err := s3sink.Encode(&again, s3sink.FormatRaw, s3sink.CompressionNone, src, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("decoded %d records that encode to other bytes", len(got))
		}
	})
}

// TestRawWorkedExample holds FORMAT.md's worked example to the encoder.
func TestRawWorkedExample(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ex, _ := strings.Cut(string(doc), "Worked example")
	_, ex, _ = strings.Cut(ex, "```\n")
	ex, _, _ = strings.Cut(ex, "```")
	var want []byte
	for _, line := range strings.Split(ex, "\n") {
		for _, f := range strings.Fields(line) {
			var b byte
			if _, err := fmt.Sscanf(f, "%02x", &b); err != nil || len(f) != 2 {
				break // the comment after the bytes
			}
			want = append(want, b)
		}
	}
	r := &shards.Record{Seq: 7, Arrival: 1772600767089, QoS: 1, Key: "k", Topic: "t/1", Data: []byte("hi")}
	if got := encode(t, s3sink.FormatRaw, s3sink.CompressionNone, []*shards.Record{r}); !bytes.Equal(got, want) {
		t.Errorf("FORMAT.md's example\n% x\nthe encoder\n% x", want, got)
	}
}

// FuzzLineMatchesEnvelope holds the hand-written jsonl encoder to
// json.Marshal of the forwarder's envelope, for any strings and bytes.
func FuzzLineMatchesEnvelope(f *testing.F) {
	f.Add("gw-1", "k", "a/b", "c", "n", "v", []byte("{}"), int64(1772600767089), uint64(7), byte(1), false)
	f.Add("g\"w", "<&>\u2028\u2029", "\x00\x1f\b\f\n\r\t\\", "\xff\xfe", "é", "日本", []byte{0, 255}, int64(-5), uint64(1<<63), byte(2), true)
	f.Fuzz(func(t *testing.T, gw, key, topic, client, pk, pv string, data []byte, arrival int64, seq uint64, qos byte, nilData bool) {
		r := &shards.Record{Seq: seq, Key: key, Topic: topic, ClientID: client, Arrival: arrival, QoS: qos, Data: data}
		if nilData {
			r.Data = nil
		}
		if pk != "" {
			r.Props = []shards.UserProperty{{Key: pk, Value: pv}, {Key: pv, Value: pk}}
		}
		s := s3sink.Source{Gateway: gw, Stream: topic, Shard: key}
		want, err := json.Marshal(forwarder.NewEnvelope(s.Gateway, s.Stream, s.Shard, r))
		if err != nil {
			t.Fatal(err)
		}
		if got := s3sink.AppendLine(nil, s, r); string(got) != string(want)+"\n" {
			t.Fatalf("line\n%s\nenvelope\n%s", got, want)
		}
	})
}
