package s3sink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/weir-gateway/weir/shards"
)

// TimeFormat is the layout of a line's ts: RFC 3339 in UTC with
// milliseconds, as forwarder.TimeFormat.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Line is one line of a jsonl object: the forwarder's JSON envelope
// (forwarder.Envelope, field for field; a test holds them together), so a
// consumer reads the archive as it reads a Kinesis stream with
// `envelope: json`. Data is base64 in JSON.
type Line struct {
	ID       string                `json:"id"`
	Gateway  string                `json:"gateway"`
	Stream   string                `json:"stream"`
	Shard    string                `json:"shard"`
	Seq      string                `json:"seq"`
	Key      string                `json:"key"`
	Topic    string                `json:"topic"`
	ClientID string                `json:"client_id"`
	TS       string                `json:"ts"`
	QoS      byte                  `json:"qos"`
	Props    []shards.UserProperty `json:"props"`
	Data     []byte                `json:"data"`
}

// Source says where records come from; it is written into jsonl lines.
type Source struct {
	Gateway, Stream, Shard string
}

// NewLine builds the line of record r.
func NewLine(src Source, r *shards.Record) Line {
	seq := shards.FormatIndex(r.Seq)
	props := r.Props
	if props == nil {
		props = []shards.UserProperty{} // always an array: one schema for consumers
	}
	return Line{
		ID:      src.Gateway + "/" + src.Stream + "/" + src.Shard + "/" + seq,
		Gateway: src.Gateway, Stream: src.Stream, Shard: src.Shard, Seq: seq,
		Key: r.Key, Topic: r.Topic, ClientID: r.ClientID,
		TS:  time.UnixMilli(r.Arrival).UTC().Format(TimeFormat),
		QoS: r.QoS, Props: props, Data: r.Data,
	}
}

// Record turns a line back into the record it was made of.
func (l Line) Record() (*shards.Record, error) {
	seq, err := shards.ParseIndex(l.Seq)
	if err != nil {
		return nil, fmt.Errorf("%w: line %s: %w", ErrCorrupt, l.ID, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, l.TS)
	if err != nil {
		return nil, fmt.Errorf("%w: line %s: ts: %w", ErrCorrupt, l.ID, err)
	}
	r := &shards.Record{Seq: seq, Key: l.Key, Data: l.Data, Arrival: ts.UnixMilli(), Topic: l.Topic,
		ClientID: l.ClientID, QoS: l.QoS}
	if len(l.Props) > 0 {
		r.Props = l.Props
	}
	return r, nil
}

// rawMagic starts every raw object; its last byte is the format version.
var rawMagic = []byte("WEIRRAW\x01")

// rawFixed is the fixed part of a raw record's body: seq, arrival, qos.
const rawFixed = 8 + 8 + 1

// maxRawBody bounds a raw record's body when reading, so that a corrupt
// length is reported rather than read as gigabytes.
const maxRawBody = 512 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode writes recs as one object's contents: format jsonl or raw (see
// FORMAT.md), compressed with gzip, zstd or none. Nothing is written to w
// before every record has been checked when the format cannot hold one.
func Encode(w io.Writer, format, compression string, src Source, recs []*shards.Record) error {
	if format == FormatRaw {
		for _, r := range recs {
			if err := rawFits(r); err != nil {
				return err
			}
		}
	} else if format != FormatJSONL {
		return fmt.Errorf("%w: format %q", ErrInvalidObject, format)
	}
	cw, err := compressor(w, compression)
	if err != nil {
		return err
	}
	switch format {
	case FormatJSONL:
		var line []byte
		for _, r := range recs {
			line = appendLine(line[:0], src, r)
			if _, err := cw.Write(line); err != nil {
				cw.abandon()
				return err
			}
		}
	case FormatRaw:
		if _, err := cw.Write(rawMagic); err != nil {
			cw.abandon()
			return err
		}
		var scratch []byte
		for _, r := range recs {
			scratch = appendRaw(scratch[:0], r)
			if _, err := cw.Write(scratch); err != nil {
				cw.abandon()
				return err
			}
		}
	}
	return cw.Close()
}

// rawFits reports whether r's strings fit the raw format's 16-bit lengths.
func rawFits(r *shards.Record) error {
	long := func(what string, n int) error {
		if n > math.MaxUint16 {
			return fmt.Errorf("%w: record %d: %s is %d bytes, the raw format holds at most 65535 (use format jsonl)", ErrInvalidObject, r.Seq, what, n)
		}
		return nil
	}
	if err := errors.Join(long("key", len(r.Key)), long("topic", len(r.Topic)), long("client id", len(r.ClientID)), long("property count", len(r.Props))); err != nil {
		return err
	}
	for _, p := range r.Props {
		if err := errors.Join(long("property name", len(p.Key)), long("property value", len(p.Value))); err != nil {
			return err
		}
	}
	if n := rawBodyLen(r); n > maxRawBody {
		return fmt.Errorf("%w: record %d is %d bytes, the raw format holds at most %d", ErrInvalidObject, r.Seq, n, maxRawBody)
	}
	return nil
}

func rawBodyLen(r *shards.Record) int {
	n := rawFixed + 2 + len(r.Key) + 2 + len(r.Topic) + 2 + len(r.ClientID) + 2 + len(r.Data)
	for _, p := range r.Props {
		n += 4 + len(p.Key) + len(p.Value)
	}
	return n
}

// appendRaw appends r's raw record (length, CRC-32C, body) to b.
func appendRaw(b []byte, r *shards.Record) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, uint32(rawBodyLen(r)))
	b = binary.BigEndian.AppendUint32(b, 0) // CRC, filled in below
	body := len(b)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Arrival))
	b = append(b, r.QoS)
	str := func(s string) {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	str(r.Key)
	str(r.Topic)
	str(r.ClientID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Props)))
	for _, p := range r.Props {
		str(p.Key)
		str(p.Value)
	}
	b = append(b, r.Data...)
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(b[body:], castagnoli))
	return b
}

// compressWriter is a compressing writer; Close flushes it, abandon
// returns its encoder to the pool without finishing.
type compressWriter interface {
	io.Writer
	Close() error
	abandon()
}

type nopCompressor struct{ io.Writer }

func (nopCompressor) Close() error { return nil }
func (nopCompressor) abandon()     {}

var (
	// klauspost's gzip writes the same format as the standard library's
	// at a quarter to a sixth of the CPU per MiB on telemetry (see
	// BENCHMARKS.md), for a ratio 5-10% lower.
	gzipPool = sync.Pool{New: func() any { return kgzip.NewWriter(nil) }}
	// One encoder per object at a time, without goroutines of its own: a
	// gateway's cores belong to ingest.
	zstdPool = sync.Pool{New: func() any {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		return e
	}}
)

type gzipCompressor struct{ *kgzip.Writer }

func (g gzipCompressor) Close() error {
	err := g.Writer.Close()
	g.abandon()
	return err
}

func (g gzipCompressor) abandon() { g.Writer.Reset(io.Discard); gzipPool.Put(g.Writer) }

type zstdCompressor struct{ *zstd.Encoder }

func (z zstdCompressor) Close() error {
	err := z.Encoder.Close()
	z.abandon()
	return err
}

func (z zstdCompressor) abandon() { z.Encoder.Reset(nil); zstdPool.Put(z.Encoder) }

func compressor(w io.Writer, compression string) (compressWriter, error) {
	switch compression {
	case CompressionNone:
		return nopCompressor{w}, nil
	case CompressionGzip:
		g := gzipPool.Get().(*kgzip.Writer)
		g.Reset(w)
		return gzipCompressor{g}, nil
	case CompressionZstd:
		z := zstdPool.Get().(*zstd.Encoder)
		z.Reset(w)
		return zstdCompressor{z}, nil
	}
	return nil, fmt.Errorf("%w: compression %q", ErrInvalidObject, compression)
}

// Reader reads the records of one object back, in order.
type Reader struct {
	r      *bufio.Reader
	format string
	close  func()
	off    int64 // offset of the next raw record in the decompressed stream
	n      int   // records returned
	magic  bool  // raw: the magic has been read
	body   bytes.Buffer
}

// NewReader reads an object of the given format. compression is gzip,
// zstd or none, or "" to tell from the first bytes (gzip and zstd frames
// have magic numbers; anything else is taken as uncompressed).
func NewReader(r io.Reader, format, compression string) (*Reader, error) {
	if format != FormatJSONL && format != FormatRaw {
		return nil, fmt.Errorf("%w: format %q", ErrInvalidObject, format)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if compression == "" {
		compression = CompressionNone
		head, _ := br.Peek(4)
		switch {
		case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
			compression = CompressionGzip
		case bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			compression = CompressionZstd
		}
	}
	out := &Reader{format: format, close: func() {}}
	switch compression {
	case CompressionNone:
		out.r = br
	case CompressionGzip:
		g, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		out.r = bufio.NewReaderSize(g, 64<<10)
	case CompressionZstd:
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		out.r, out.close = bufio.NewReaderSize(z, 64<<10), z.Close
	default:
		return nil, fmt.Errorf("%w: compression %q", ErrInvalidObject, compression)
	}
	return out, nil
}

// Close releases the decompressor; it does not close the underlying reader.
func (d *Reader) Close() { d.close() }

// Next returns the next record, or io.EOF after the last one. A damaged
// object gives an error wrapping ErrCorrupt (a *CorruptError for raw).
func (d *Reader) Next() (*shards.Record, error) {
	if d.format == FormatJSONL {
		return d.nextLine()
	}
	return d.nextRaw()
}

func (d *Reader) nextLine() (*shards.Record, error) {
	for {
		b, err := d.r.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) == 0 {
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, decompressErr(err)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, decompressErr(err)
		}
		var l Line
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrCorrupt, d.n+1, err)
		}
		r, err := l.Record()
		if err != nil {
			return nil, err
		}
		d.n++
		return r, nil
	}
}

// decompressErr marks a failure of the decompressor (truncated stream,
// bad checksum) or of the underlying reader as a damaged object.
func decompressErr(err error) error { return fmt.Errorf("%w: %w", ErrCorrupt, err) }

func (d *Reader) corrupt(format string, args ...any) error {
	return &CorruptError{Offset: d.off, Record: d.n, Reason: fmt.Sprintf(format, args...)}
}

func (d *Reader) nextRaw() (*shards.Record, error) {
	if !d.magic {
		var m [8]byte
		if _, err := io.ReadFull(d.r, m[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, d.corrupt("no raw header (want %q)", rawMagic)
			}
			return nil, decompressErr(err)
		}
		if !bytes.Equal(m[:], rawMagic) {
			return nil, d.corrupt("header %q is not %q", m[:], rawMagic)
		}
		d.magic, d.off = true, int64(len(rawMagic))
	}
	var h [8]byte
	if _, err := io.ReadFull(d.r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, d.corrupt("torn record header")
		}
		return nil, decompressErr(err)
	}
	size, sum := binary.BigEndian.Uint32(h[:4]), binary.BigEndian.Uint32(h[4:])
	if size < rawFixed+8 || size > maxRawBody {
		return nil, d.corrupt("record length %d out of range", size)
	}
	d.body.Reset()
	// CopyN grows the buffer as bytes arrive, so a corrupt length cannot
	// allocate more than the object holds.
	if _, err := io.CopyN(&d.body, d.r, int64(size)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.corrupt("torn record: length %d, %d bytes left", size, d.body.Len())
		}
		return nil, decompressErr(err)
	}
	b := d.body.Bytes()
	if got := crc32.Checksum(b, castagnoli); got != sum {
		return nil, d.corrupt("checksum %08x, want %08x", got, sum)
	}
	r := &shards.Record{Seq: binary.BigEndian.Uint64(b), Arrival: int64(binary.BigEndian.Uint64(b[8:])), QoS: b[16]}
	b = b[rawFixed:]
	str := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	var ok bool
	if r.Key, ok = str(); !ok {
		return nil, d.corrupt("key overruns the record")
	}
	if r.Topic, ok = str(); !ok {
		return nil, d.corrupt("topic overruns the record")
	}
	if r.ClientID, ok = str(); !ok {
		return nil, d.corrupt("client id overruns the record")
	}
	if len(b) < 2 {
		return nil, d.corrupt("property count overruns the record")
	}
	np := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	for i := range np {
		k, ok1 := str()
		v, ok2 := str()
		if !ok1 || !ok2 {
			return nil, d.corrupt("property %d overruns the record", i)
		}
		r.Props = append(r.Props, shards.UserProperty{Key: k, Value: v})
	}
	r.Data = bytes.Clone(b)
	d.off += int64(len(h)) + int64(size)
	d.n++
	return r, nil
}

// Decode reads a whole object; see NewReader.
func Decode(r io.Reader, format, compression string) ([]*shards.Record, error) {
	d, err := NewReader(r, format, compression)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []*shards.Record
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}
