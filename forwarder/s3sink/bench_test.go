package s3sink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/integration/s3rver"
	"github.com/weir-gateway/weir/shards"
)

// benchObjects are distinct runs of one shard of firmware-sim JSON
// telemetry, perObject records each.
func benchObjects(n, perObject int) []s3sink.Object {
	objs := make([]s3sink.Object, n)
	for i := range objs {
		objs[i] = s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000000",
			Records: telemetry(perObject, 50, uint64(i*perObject*3+1))}
	}
	return objs
}

func dataBytes(recs []*shards.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Data)
	}
	return n
}

// BenchmarkPut compares Put into s3rver with bare loops over the same
// objects, interleaved object by object so both see the same machine:
//   - bare-encode: Encode, then a plain PutObject (no checks, no
//     Content-MD5, no metadata): the sink's own overhead is sink/bare-encode;
//   - bare-upload: PutObject of the object already encoded: what
//     encoding and compression cost on a link as fast as loopback.
//
// Rates are records/s and MiB/s of record payload, each over its own
// time only.
func BenchmarkPut(b *testing.B) {
	srv := server(b)
	objs := benchObjects(8, 5000)
	for _, fc := range [][2]string{{"jsonl", "gzip"}, {"jsonl", "zstd"}, {"jsonl", "none"}, {"raw", "zstd"}} {
		cfg := sinkConfig(b, srv.Endpoint, sharedBucket)
		cfg.Format, cfg.Compression = fc[0], fc[1]
		b.Run(fc[0]+"-"+fc[1], func(b *testing.B) {
			w := newWriter(b, cfg, s3sink.Options{})
			c := s3rver.NewClient(srv.Endpoint)
			ctx := context.Background()
			encoded := make([][]byte, len(objs))
			for i, o := range objs {
				var buf bytes.Buffer
				if err := s3sink.Encode(&buf, cfg.Format, cfg.Compression, s3sink.Source{Gateway: "gw-1", Stream: o.Stream, Shard: o.Shard}, o.Records); err != nil {
					b.Fatal(err)
				}
				encoded[i] = buf.Bytes()
			}
			put := func(key string, body []byte) {
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(sharedBucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
					b.Fatal(err)
				}
			}
			var sink, bareEncode, bareUpload time.Duration
			recs, data := 0, 0
			for i := 0; b.Loop(); i++ {
				o := objs[i%len(objs)]
				t0 := time.Now()
				if _, err := w.Put(ctx, o); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				var buf bytes.Buffer
				if err := s3sink.Encode(&buf, cfg.Format, cfg.Compression, s3sink.Source{Gateway: "gw-1", Stream: o.Stream, Shard: o.Shard}, o.Records); err != nil {
					b.Fatal(err)
				}
				put(w.Key(o)+".bare-encode", buf.Bytes())
				t2 := time.Now()
				put(w.Key(o)+".bare-upload", encoded[i%len(objs)])
				sink, bareEncode, bareUpload = sink+t1.Sub(t0), bareEncode+time.Since(t1)-time.Since(t2), bareUpload+time.Since(t2)
				recs, data = recs+len(o.Records), data+dataBytes(o.Records)
			}
			for _, m := range []struct {
				name string
				d    time.Duration
			}{{"sink", sink}, {"bare-encode", bareEncode}, {"bare-upload", bareUpload}} {
				b.ReportMetric(float64(recs)/m.d.Seconds(), m.name+"-records/s")
				b.ReportMetric(float64(data)/m.d.Seconds()/(1<<20), m.name+"-MiB/s")
			}
			b.ReportMetric(bareEncode.Seconds()/sink.Seconds(), "sink/bare-encode")
			b.ReportMetric(bareUpload.Seconds()/sink.Seconds(), "sink/bare-upload")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCompression builds objects of firmware-sim JSON telemetry
// (5000 records of 50 devices, 139 B of payload each) and reports, per
// MiB of record payload: the process CPU to encode and compress it
// (cpu-ms/MiB), the bytes that go up the link (uplink-B/B) and the
// compression ratio of the encoded object. "none" is encoding alone.
// Rows other than the package's own (gzip, zstd, none) are for
// comparison: other levels, and the standard library's gzip, whose
// output is the same format; they compress the encoded object.
func BenchmarkCompression(b *testing.B) {
	recs := telemetry(5000, 50, 1)
	payload := dataBytes(recs)
	writer := func(mk func(io.Writer) (io.WriteCloser, error)) func(w io.Writer, plain []byte) error {
		return func(w io.Writer, plain []byte) error {
			c, err := mk(w)
			if err != nil {
				return err
			}
			if _, err := c.Write(plain); err != nil {
				return err
			}
			return c.Close()
		}
	}
	others := []struct {
		name     string
		compress func(w io.Writer, plain []byte) error
	}{
		{"stdlib-gzip-6", writer(func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, 6) })},
		{"stdlib-gzip-1", writer(func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, 1) })},
		{"klauspost-gzip-6", writer(func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, 6) })},
		{"klauspost-gzip-1", writer(func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, 1) })},
		{"zstd-fastest", writer(func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		})},
	}
	for _, format := range formats {
		var plain bytes.Buffer
		if err := s3sink.Encode(&plain, format, s3sink.CompressionNone, src, recs); err != nil {
			b.Fatal(err)
		}
		measure := func(b *testing.B, f func(out *bytes.Buffer) error) {
			var out bytes.Buffer
			b.SetBytes(int64(payload))
			cpu0 := cpuTime()
			for b.Loop() {
				out.Reset()
				if err := f(&out); err != nil {
					b.Fatal(err)
				}
			}
			mib := float64(payload) * float64(b.N) / (1 << 20)
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/mib, "cpu-ms/MiB")
			b.ReportMetric(float64(out.Len())/float64(payload), "uplink-B/B")
			b.ReportMetric(float64(plain.Len())/float64(out.Len()), "ratio")
		}
		for _, c := range []string{s3sink.CompressionNone, s3sink.CompressionGzip, s3sink.CompressionZstd} {
			b.Run(format+"/"+c, func(b *testing.B) {
				measure(b, func(out *bytes.Buffer) error { return s3sink.Encode(out, format, c, src, recs) })
			})
		}
		for _, c := range others {
			b.Run(format+"/"+c.name, func(b *testing.B) {
				measure(b, func(out *bytes.Buffer) error {
					var enc bytes.Buffer
					if err := s3sink.Encode(&enc, format, s3sink.CompressionNone, src, recs); err != nil {
						return err
					}
					return c.compress(out, enc.Bytes())
				})
			})
		}
	}
}
