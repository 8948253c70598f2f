package s3sink_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/integration/faultproxy"
	"github.com/weir-gateway/weir/integration/s3rver"
	"github.com/weir-gateway/weir/shards"
)

// sinkConfig is a Config for bucket at endpoint under a prefix of the
// test's own.
func sinkConfig(t testing.TB, endpoint, bucket string) s3sink.Config {
	return s3sink.Config{Bucket: bucket, Endpoint: endpoint,
		Prefix: strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "/{stream}/{yyyy}/{MM}/{dd}/{HH}/"}
}

func newWriter(t testing.TB, cfg s3sink.Config, opts s3sink.Options) *s3sink.Writer {
	t.Helper()
	if opts.Gateway == "" {
		opts.Gateway = "gw-1"
	}
	if opts.LoadOptions == nil {
		opts.LoadOptions = append(opts.LoadOptions, config.WithCredentialsProvider(s3rver.Credentials))
	}
	w, err := s3sink.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func getObject(t testing.TB, c *s3.Client, bucket, key string) (*s3.GetObjectOutput, []byte) {
	t.Helper()
	out, err := c.GetObject(ctxT(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return out, b
}

func listKeys(t testing.TB, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(ctxT(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// TestPutReadBack writes one object in every format and compression and
// reads it back with the SDK: its key, metadata and headers, and records
// that decode to exactly what was put, with this package and with
// Debian's gzip and zstd.
func TestPutReadBack(t *testing.T) {
	srv := server(t)
	c := s3rver.NewClient(srv.Endpoint)
	recs := telemetry(400, 6, 100)
	for _, f := range formats {
		for _, comp := range compressions {
			t.Run(f+"/"+comp, func(t *testing.T) {
				cfg := sinkConfig(t, srv.Endpoint, sharedBucket)
				cfg.Format, cfg.Compression = f, comp
				w := newWriter(t, cfg, s3sink.Options{})
				res, err := w.Put(ctxT(t), s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000002", Records: recs})
				if err != nil {
					t.Fatal(err)
				}
				ext := map[string]string{"gzip": ".gz", "zstd": ".zst", "none": ""}[comp]
				wantKey := strings.TrimSuffix(cfg.Prefix, "{stream}/{yyyy}/{MM}/{dd}/{HH}/") +
					"telemetry/2026/03/04/05/telemetry-shardId-000000000002-00000000000000000100-gw-1." + f + ext
				if res.Key != wantKey || res.Records != len(recs) || res.FirstSeq != 100 || res.LastSeq != recs[len(recs)-1].Seq || res.Multipart {
					t.Fatalf("result %+v, want key %s", res, wantKey)
				}
				out, body := getObject(t, c, sharedBucket, res.Key)
				if len(body) != res.Bytes {
					t.Errorf("object has %d bytes, Put said %d", len(body), res.Bytes)
				}
				wantMeta := map[string]string{"gateway": "gw-1", "stream": "telemetry", "shard": "shardId-000000000002",
					"first-seq": "100", "last-seq": fmt.Sprint(res.LastSeq), "records": "400", "format": f, "compression": comp,
					"first-arrival": "2026-03-04T05:06:07.089Z", "last-arrival": "2026-03-04T05:06:11.079Z"}
				for k, v := range wantMeta {
					if out.Metadata[k] != v {
						t.Errorf("metadata %s = %q, want %q (all: %v)", k, out.Metadata[k], v, out.Metadata)
					}
				}
				wantType := map[string]string{"jsonl": "application/x-ndjson", "raw": "application/octet-stream"}[f]
				wantEnc := map[string]string{"gzip": "gzip", "zstd": "zstd", "none": ""}[comp]
				if aws.ToString(out.ContentType) != wantType || aws.ToString(out.ContentEncoding) != wantEnc {
					t.Errorf("Content-Type %q Content-Encoding %q, want %q %q", aws.ToString(out.ContentType), aws.ToString(out.ContentEncoding), wantType, wantEnc)
				}
				got, err := s3sink.Decode(bytes.NewReader(body), out.Metadata["format"], out.Metadata["compression"])
				if err != nil {
					t.Fatal(err)
				}
				sameRecords(t, got, recs)
				if tool := map[string]string{"gzip": "gzip", "zstd": "zstd"}[comp]; tool != "" {
					path := filepath.Join(t.TempDir(), filepath.Base(res.Key))
					if err := os.WriteFile(path, body, 0o644); err != nil {
						t.Fatal(err)
					}
					plain, err := exec.Command(tool, "-dcq", path).Output()
					if err != nil {
						t.Fatalf("%s -dcq: %v", tool, err)
					}
					got, err := s3sink.Decode(bytes.NewReader(plain), f, s3sink.CompressionNone)
					if err != nil {
						t.Fatal(err)
					}
					sameRecords(t, got, recs)
				}
			})
		}
	}
}

// TestPutIdempotent retries a Put, and then puts the same run cut
// longer, as an engine restarted after a crash may: one object remains,
// holding the last run.
func TestPutIdempotent(t *testing.T) {
	srv := server(t)
	c := s3rver.NewClient(srv.Endpoint)
	cfg := sinkConfig(t, srv.Endpoint, sharedBucket)
	w := newWriter(t, cfg, s3sink.Options{})
	recs := telemetry(200, 3, 7)
	o := s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000000", Records: recs[:120]}
	r1, err := w.Put(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	_, b1 := getObject(t, c, sharedBucket, r1.Key)
	r2, err := w.Put(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	_, b2 := getObject(t, c, sharedBucket, r2.Key)
	dir := strings.SplitN(cfg.Prefix, "/", 2)[0] + "/"
	if keys := listKeys(t, c, sharedBucket, dir); r1 != r2 || !bytes.Equal(b1, b2) || len(keys) != 1 {
		t.Fatalf("retry: %+v then %+v, same bytes %v, objects %v", r1, r2, bytes.Equal(b1, b2), keys)
	}
	o.Records = recs
	r3, err := w.Put(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	keys := listKeys(t, c, sharedBucket, dir)
	if r3.Key != r1.Key || len(keys) != 1 {
		t.Fatalf("longer cut went to %s; objects %v", r3.Key, keys)
	}
	out, b3 := getObject(t, c, sharedBucket, r3.Key)
	got, err := s3sink.Decode(bytes.NewReader(b3), s3sink.FormatJSONL, "")
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, recs)
	if out.Metadata["records"] != "200" {
		t.Errorf("metadata records %q after the overwrite", out.Metadata["records"])
	}
}

// incompressible returns n records of random data, about size bytes each.
func incompressible(n, size int) []*shards.Record {
	recs := make([]*shards.Record, n)
	for i := range recs {
		d := make([]byte, size)
		rand.Read(d)
		recs[i] = &shards.Record{Seq: uint64(i + 1), Key: fmt.Sprint("k", i%4), Arrival: baseArrival + int64(i), Data: d}
	}
	return recs
}

// TestMultipart uploads an object of three parts and reads it back; the
// uplink budget hook sees each part.
func TestMultipart(t *testing.T) {
	srv := server(t)
	c := s3rver.NewClient(srv.Endpoint)
	cfg := sinkConfig(t, srv.Endpoint, sharedBucket)
	cfg.Format, cfg.Compression = s3sink.FormatRaw, s3sink.CompressionNone
	var waits []int
	w := newWriter(t, cfg, s3sink.Options{PartSize: s3sink.MinPartSize,
		Wait: func(_ context.Context, n int) error { waits = append(waits, n); return nil }})
	recs := incompressible(48, 256<<10) // 12 MiB
	res, err := w.Put(ctxT(t), s3sink.Object{Stream: "s", Shard: "shardId-000000000001", Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Multipart || len(waits) != 3 || waits[0] != s3sink.MinPartSize || waits[0]+waits[1]+waits[2] != res.Bytes {
		t.Fatalf("result %+v, budget waits %v", res, waits)
	}
	out, body := getObject(t, c, sharedBucket, res.Key)
	got, err := s3sink.Decode(bytes.NewReader(body), s3sink.FormatRaw, s3sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, recs)
	if out.Metadata["last-seq"] != "48" || out.Metadata["records"] != "48" {
		t.Errorf("metadata %v", out.Metadata)
	}
}

// failingPart is an HTTP client that drops the request for one part, as
// a link that dies mid-upload would, and counts the aborts it sees.
type failingPart struct {
	next   aws.HTTPClient
	part   atomic.Value // string: the part number to fail, "" for none
	aborts atomic.Int32
}

func (f *failingPart) Do(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	if r.Method == http.MethodPut && q.Get("partNumber") == f.part.Load() {
		return nil, errors.New("injected: connection reset by peer")
	}
	if r.Method == http.MethodDelete && q.Has("uploadId") {
		f.aborts.Add(1)
	}
	return f.next.Do(r)
}

// TestMultipartFailureAborts loses the second part of an upload: the Put
// fails as transient, the upload is aborted (s3rver does not implement
// the abort and says so; the Writer logs it) and no object appears. The
// retry writes the whole object.
func TestMultipartFailureAborts(t *testing.T) {
	srv := server(t)
	c := s3rver.NewClient(srv.Endpoint)
	cfg := sinkConfig(t, srv.Endpoint, sharedBucket)
	cfg.Format, cfg.Compression = s3sink.FormatRaw, s3sink.CompressionNone
	// The SDK adds AWS_CA_BUNDLE only to its own buildable client.
	t.Setenv("AWS_CA_BUNDLE", "")
	os.Unsetenv("AWS_CA_BUNDLE")
	hc := &failingPart{next: awshttp.NewBuildableClient()}
	hc.part.Store("2")
	w := newWriter(t, cfg, s3sink.Options{PartSize: s3sink.MinPartSize, HTTPClient: hc})
	o := s3sink.Object{Stream: "s", Shard: "shardId-000000000001", Records: incompressible(44, 256<<10)}
	_, err := w.Put(ctxT(t), o)
	if err == nil {
		t.Fatal("Put succeeded with a lost part")
	}
	if perm, reason := s3sink.Classify(err); perm {
		t.Errorf("lost part classified permanent: %s (%v)", reason, err)
	}
	if hc.aborts.Load() != 1 {
		t.Errorf("%d aborts sent, want 1", hc.aborts.Load())
	}
	dir := strings.SplitN(cfg.Prefix, "/", 2)[0] + "/"
	if keys := listKeys(t, c, sharedBucket, dir); len(keys) != 0 {
		t.Errorf("objects after a failed upload: %v", keys)
	}
	hc.part.Store("")
	res, err := w.Put(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if keys := listKeys(t, c, sharedBucket, dir); len(keys) != 1 || keys[0] != res.Key {
		t.Fatalf("objects after the retry: %v", keys)
	}
	_, body := getObject(t, c, sharedBucket, res.Key)
	got, err := s3sink.Decode(bytes.NewReader(body), s3sink.FormatRaw, "")
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, o.Records)
}

// TestTransientFaults puts through the fault proxy: an unreachable store
// and one answering 502 are transient, and the Put succeeds once the
// store is back.
func TestTransientFaults(t *testing.T) {
	srv := s3rver.Start(t, "faults")
	proxy, err := faultproxy.New(srv.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	w := newWriter(t, sinkConfig(t, proxy.URL(), "faults"), s3sink.Options{})
	o := s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000000", Records: telemetry(50, 2, 1)}

	proxy.Set(faultproxy.Faults{Down: true})
	_, err = w.Put(ctxT(t), o)
	if perm, reason := s3sink.Classify(err); err == nil || perm || reason != "connection error" {
		t.Errorf("store unreachable: %v, permanent %v %q", err, perm, reason)
	}
	proxy.Set(faultproxy.Faults{})
	res, err := w.Put(ctxT(t), o)
	if err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
	if keys := listKeys(t, s3rver.NewClient(srv.Endpoint), "faults", ""); len(keys) != 1 || keys[0] != res.Key {
		t.Errorf("objects %v, want [%s]", keys, res.Key)
	}

	srv.Stop() // the proxy answers 502 Bad Gateway while the store is gone
	_, err = w.Put(ctxT(t), o)
	var re *awshttp.ResponseError
	if perm, reason := s3sink.Classify(err); !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadGateway || perm || !strings.Contains(reason, "502") {
		t.Errorf("store down behind the proxy: %v, permanent %v %q", err, perm, reason)
	}
}

// TestPermanentFaults: a missing bucket, an unknown access key and no
// credentials at all pause the sink with what to fix.
func TestPermanentFaults(t *testing.T) {
	srv := server(t)
	o := s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000000", Records: telemetry(5, 1, 1)}
	check := func(name string, w *s3sink.Writer, code, hint string) {
		t.Helper()
		_, err := w.Put(ctxT(t), o)
		perm, reason := s3sink.Classify(err)
		var ae smithy.APIError
		if !perm || !strings.Contains(reason, hint) || (code != "" && (!errors.As(err, &ae) || ae.ErrorCode() != code)) {
			t.Errorf("%s: %v; permanent %v, reason %q", name, err, perm, reason)
		}
	}
	check("missing bucket", newWriter(t, sinkConfig(t, srv.Endpoint, "no-such-bucket"), s3sink.Options{}), "NoSuchBucket", "create it")
	bad := credentials.NewStaticCredentialsProvider("AKIDUNKNOWN", "secret", "")
	check("unknown key", newWriter(t, sinkConfig(t, srv.Endpoint, sharedBucket),
		s3sink.Options{LoadOptions: []func(*config.LoadOptions) error{config.WithCredentialsProvider(bad)}}), "InvalidAccessKeyId", "fix the credentials")

	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	start := time.Now()
	check("no credentials", newWriter(t, sinkConfig(t, srv.Endpoint, sharedBucket),
		s3sink.Options{LoadOptions: []func(*config.LoadOptions) error{}}), "", "provide credentials")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("finding no credentials took %v: the instance metadata service should not be probed", d)
	}
}

// TestPutRefuses: objects the engine must not build, a budget that says
// no and a cancelled context end the Put before anything is written.
func TestPutRefuses(t *testing.T) {
	srv := server(t)
	c := s3rver.NewClient(srv.Endpoint)
	cfg := sinkConfig(t, srv.Endpoint, sharedBucket)
	errBudget := errors.New("budget closed")
	w := newWriter(t, cfg, s3sink.Options{Wait: func(ctx context.Context, n int) error {
		if n > 1000 {
			return errBudget
		}
		return ctx.Err()
	}})
	recs := telemetry(3, 1, 1)
	for name, o := range map[string]s3sink.Object{
		"empty":        {Stream: "s", Shard: "shardId-000000000000"},
		"out of order": {Stream: "s", Shard: "shardId-000000000000", Records: []*shards.Record{recs[1], recs[0]}},
		"no shard":     {Stream: "s", Records: recs},
	} {
		_, err := w.Put(ctxT(t), o)
		if perm, _ := s3sink.Classify(err); !errors.Is(err, s3sink.ErrInvalidObject) || !perm {
			t.Errorf("%s: %v, permanent %v", name, err, perm)
		}
	}
	if _, err := w.Put(ctxT(t), s3sink.Object{Stream: "s", Shard: "shardId-000000000000", Records: telemetry(100, 1, 1)}); !errors.Is(err, errBudget) {
		t.Errorf("budget refused: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.Put(ctx, s3sink.Object{Stream: "s", Shard: "shardId-000000000000", Records: recs[:1]})
	if perm, reason := s3sink.Classify(err); perm || reason != "canceled" {
		t.Errorf("cancelled: %v, permanent %v %q", err, perm, reason)
	}
	if keys := listKeys(t, c, sharedBucket, strings.SplitN(cfg.Prefix, "/", 2)[0]+"/"); len(keys) != 0 {
		t.Errorf("objects written: %v", keys)
	}
	if _, err := s3sink.New(context.Background(), s3sink.Config{Bucket: "b"}, s3sink.Options{}); !errors.Is(err, s3sink.ErrInvalidConfig) || !strings.Contains(err.Error(), "region") {
		t.Errorf("New without region or endpoint: %v", err)
	}
	if _, err := s3sink.New(context.Background(), s3sink.Config{Bucket: "b", Region: "r"}, s3sink.Options{PartSize: 1 << 20}); !errors.Is(err, s3sink.ErrInvalidConfig) {
		t.Error("New accepted 1 MiB parts")
	}
}

// TestReadAll reads an archive of several objects back in key order.
func TestReadAll(t *testing.T) {
	srv := server(t)
	c := s3rver.NewClient(srv.Endpoint)
	cfg := sinkConfig(t, srv.Endpoint, sharedBucket)
	w := newWriter(t, cfg, s3sink.Options{})
	recs := telemetry(90, 4, 1)
	var want []string
	for i := 0; i < len(recs); i += 30 {
		res, err := w.Put(ctxT(t), s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000003", Records: recs[i : i+30]})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res.Key)
	}
	dir := strings.SplitN(cfg.Prefix, "/", 2)[0] + "/"
	objs, err := s3sink.ReadAll(ctxT(t), c, sharedBucket, dir)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var got []*shards.Record
	for _, o := range objs {
		keys = append(keys, o.Key)
		got = append(got, o.Records...)
		if o.Metadata["shard"] != "shardId-000000000003" {
			t.Errorf("%s: metadata %v", o.Key, o.Metadata)
		}
	}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	sameRecords(t, got, recs)
	// Something that is not an object of the sink fails the read.
	if _, err := c.PutObject(ctxT(t), &s3.PutObjectInput{Bucket: aws.String(sharedBucket), Key: aws.String(dir + "zz-not-ours.jsonl"),
		Body: strings.NewReader("hello\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3sink.ReadAll(ctxT(t), c, sharedBucket, dir); !errors.Is(err, s3sink.ErrCorrupt) || !strings.Contains(err.Error(), "zz-not-ours") {
		t.Errorf("a foreign object: %v", err)
	}
}
