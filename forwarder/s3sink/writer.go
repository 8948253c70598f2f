package s3sink

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// Part sizes of multipart uploads. S3 wants every part but the last to be
// at least 5 MiB.
const (
	DefaultPartSize = 8 << 20
	MinPartSize     = 5 << 20
)

// Options are what the engine passes besides the Config.
type Options struct {
	// Gateway names this gateway in object names, metadata and jsonl
	// lines, so that a fleet can share a bucket without overwriting each
	// other's objects.
	Gateway string
	// HTTPClient carries the requests; nil is the SDK's client with a 10s
	// dial timeout and a 60s wait for each response's headers. With
	// AWS_CA_BUNDLE set, the SDK insists on its own *BuildableClient.
	HTTPClient aws.HTTPClient
	Logger     zerolog.Logger
	// Wait, if set, is called before each request body of n bytes is
	// sent (the whole object, or one part), so a shared uplink budget can
	// hold the upload back. Its error ends the Put.
	Wait func(ctx context.Context, n int) error
	// PartSize is the size of multipart parts; objects larger than one
	// part are uploaded in parts. 0 means DefaultPartSize; at least
	// MinPartSize.
	PartSize int
	// RequestTimeout bounds each request (a whole small object, or one
	// part); 0 means 10 minutes, enough for 8 MiB at 16 KiB/s.
	RequestTimeout time.Duration
	// LoadOptions come after the sink's own options to the SDK's
	// config.LoadDefaultConfig (e.g. static credentials).
	LoadOptions []func(*config.LoadOptions) error
}

// Object is an ordered run of records of one local shard, to be written
// as one object.
type Object struct {
	Stream, Shard string
	Records       []*shards.Record
}

// PutResult says what was written.
type PutResult struct {
	Key       string // the object's key in the bucket
	Bytes     int    // the object's size (after compression)
	Records   int
	FirstSeq  uint64
	LastSeq   uint64
	Multipart bool
}

// Writer writes objects to one bucket. It is safe for concurrent use.
type Writer struct {
	cfg     Config
	prefix  prefixTemplate
	client  *s3.Client
	opts    Options
	closeFn func()
}

// New builds a Writer for cfg (after Defaults) with aws-sdk-go-v2's
// default credential chain (environment, shared config and profiles,
// SSO, web identity, container roles) or cfg.Profile. The EC2 instance
// metadata service is off unless AWS_EC2_METADATA_DISABLED=false is set:
// on a gateway that is not an EC2 instance, probing it delays every
// start by seconds. The SDK does not retry; the engine retries whole
// Puts after Classify.
func New(ctx context.Context, cfg Config, opts Options) (*Writer, error) {
	cfg.Defaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	prefix, _ := parsePrefix(cfg.Prefix)
	if opts.Gateway == "" && strings.Contains(cfg.Prefix, "{gateway}") {
		return nil, fmt.Errorf("%w: prefix %q uses {gateway} but no gateway id was given", ErrInvalidConfig, cfg.Prefix)
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize {
		return nil, fmt.Errorf("%w: part size %d is below S3's minimum of %d", ErrInvalidConfig, opts.PartSize, MinPartSize)
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 10 * time.Minute
	}
	w := &Writer{cfg: cfg, prefix: prefix, opts: opts, closeFn: func() {}}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		// The SDK's buildable client, so that AWS_CA_BUNDLE still applies;
		// it builds its transport on first use, which is when we learn it.
		var tr atomic.Pointer[http.Transport]
		httpClient = awshttp.NewBuildableClient().
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second }).
			WithTransportOptions(func(t *http.Transport) {
				t.ResponseHeaderTimeout = 60 * time.Second
				tr.Store(t)
			})
		w.closeFn = func() {
			if t := tr.Load(); t != nil {
				t.CloseIdleConnections()
			}
		}
	}
	lo := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithHTTPClient(httpClient),
	}
	if _, set := os.LookupEnv("AWS_EC2_METADATA_DISABLED"); !set {
		lo = append(lo, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	if cfg.Region != "" {
		lo = append(lo, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(cfg.Profile))
	}
	lo = append(lo, opts.LoadOptions...)
	awsCfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("s3sink: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // a custom endpoint still needs a region to sign with
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = taggedCredentials{awsCfg.Credentials}
	}
	w.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle.Use(cfg.Endpoint)
		// Content-MD5 instead of the SDK's default CRC trailers, which
		// many S3-compatible stores reject or ignore.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return w, nil
}

// Close drops idle connections of the Writer's own HTTP client.
func (w *Writer) Close() { w.closeFn() }

// Key returns the key o is written under:
//
//	<prefix rendered><stream>-<shard>-<first seq, 20 digits>[-<gateway>].<format>[.gz|.zst]
//
// It depends only on the object's first record and the configuration,
// so a Put retried after a crash — even one cut at another record —
// overwrites the object rather than adding one with the same records.
func (w *Writer) Key(o Object) string {
	first := o.Records[0]
	at := time.UnixMilli(first.Arrival).UTC()
	name := fmt.Sprintf("%s-%s-%020d", o.Stream, o.Shard, first.Seq)
	if w.opts.Gateway != "" {
		name += "-" + w.opts.Gateway
	}
	return w.prefix.render(o.Stream, o.Shard, w.opts.Gateway, at) + name + extension(w.cfg.Format, w.cfg.Compression)
}

func extension(format, compression string) string {
	switch compression {
	case CompressionGzip:
		return "." + format + ".gz"
	case CompressionZstd:
		return "." + format + ".zst"
	}
	return "." + format
}

func contentType(format string) string {
	if format == FormatJSONL {
		return "application/x-ndjson"
	}
	return "application/octet-stream"
}

// contentEncoding is the registered HTTP coding, so a browser or curl
// --compressed shows the records; `aws s3 cp` and the SDKs keep the bytes
// as stored.
func contentEncoding(compression string) *string {
	switch compression {
	case CompressionGzip:
		return aws.String("gzip")
	case CompressionZstd:
		return aws.String("zstd")
	}
	return nil
}

func checkObject(o Object) error {
	if len(o.Records) == 0 {
		return fmt.Errorf("%w: no records", ErrInvalidObject)
	}
	if o.Stream == "" || o.Shard == "" {
		return fmt.Errorf("%w: stream %q shard %q", ErrInvalidObject, o.Stream, o.Shard)
	}
	for i := 1; i < len(o.Records); i++ {
		if o.Records[i].Seq <= o.Records[i-1].Seq {
			return fmt.Errorf("%w: record %d has seq %d after %d", ErrInvalidObject, i, o.Records[i].Seq, o.Records[i-1].Seq)
		}
	}
	return nil
}

// Put encodes o and uploads it, in parts when it is larger than
// Options.PartSize (an upload that fails is aborted). It is idempotent:
// see Key. Errors keep their chains; sort them with Classify.
func (w *Writer) Put(ctx context.Context, o Object) (PutResult, error) {
	if err := checkObject(o); err != nil {
		return PutResult{}, err
	}
	var body bytes.Buffer
	src := Source{Gateway: w.opts.Gateway, Stream: o.Stream, Shard: o.Shard}
	if err := Encode(&body, w.cfg.Format, w.cfg.Compression, src, o.Records); err != nil {
		return PutResult{}, err
	}
	first, last := o.Records[0], o.Records[len(o.Records)-1]
	res := PutResult{Key: w.Key(o), Bytes: body.Len(), Records: len(o.Records), FirstSeq: first.Seq, LastSeq: last.Seq}
	meta := map[string]string{
		"stream":        o.Stream,
		"shard":         o.Shard,
		"first-seq":     shards.FormatIndex(first.Seq),
		"last-seq":      shards.FormatIndex(last.Seq),
		"records":       strconv.Itoa(len(o.Records)),
		"first-arrival": time.UnixMilli(first.Arrival).UTC().Format(TimeFormat),
		"last-arrival":  time.UnixMilli(last.Arrival).UTC().Format(TimeFormat),
		"format":        w.cfg.Format,
		"compression":   w.cfg.Compression,
	}
	if w.opts.Gateway != "" {
		meta["gateway"] = w.opts.Gateway
	}
	var err error
	if body.Len() <= w.opts.PartSize {
		err = w.putObject(ctx, res.Key, body.Bytes(), meta)
	} else {
		res.Multipart = true
		err = w.putMultipart(ctx, res.Key, body.Bytes(), meta)
	}
	if err != nil {
		return PutResult{}, fmt.Errorf("s3sink: put s3://%s/%s (records %d..%d): %w", w.cfg.Bucket, res.Key, first.Seq, last.Seq, err)
	}
	w.opts.Logger.Debug().Str("key", res.Key).Int("bytes", res.Bytes).Int("records", res.Records).Bool("multipart", res.Multipart).Msg("object written")
	return res, nil
}

func contentMD5(b []byte) *string {
	sum := md5.Sum(b)
	return aws.String(base64.StdEncoding.EncodeToString(sum[:]))
}

func (w *Writer) wait(ctx context.Context, n int) error {
	if w.opts.Wait == nil {
		return nil
	}
	return w.opts.Wait(ctx, n)
}

func (w *Writer) putObject(ctx context.Context, key string, body []byte, meta map[string]string) error {
	if err := w.wait(ctx, len(body)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.RequestTimeout)
	defer cancel()
	_, err := w.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(w.cfg.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentMD5: contentMD5(body),
		ContentType: aws.String(contentType(w.cfg.Format)), ContentEncoding: contentEncoding(w.cfg.Compression),
		Metadata: meta,
	})
	return err
}

func (w *Writer) putMultipart(ctx context.Context, key string, body []byte, meta map[string]string) error {
	cctx, cancel := context.WithTimeout(ctx, w.opts.RequestTimeout)
	created, err := w.client.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(w.cfg.Bucket), Key: aws.String(key),
		ContentType: aws.String(contentType(w.cfg.Format)), ContentEncoding: contentEncoding(w.cfg.Compression),
		Metadata: meta,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	if err := w.uploadParts(ctx, key, created.UploadId, body); err != nil {
		// An upload left open keeps its parts (and is billed) until it is
		// aborted; try even when ctx is done. A bucket lifecycle rule
		// (AbortIncompleteMultipartUpload) catches what a crash leaves.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := w.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(w.cfg.Bucket), Key: aws.String(key), UploadId: created.UploadId,
		}); aerr != nil {
			w.opts.Logger.Warn().Err(aerr).Str("key", key).Str("upload_id", aws.ToString(created.UploadId)).
				Msg("could not abort a failed multipart upload; its parts stay until a lifecycle rule removes them")
		}
		return err
	}
	return nil
}

func (w *Writer) uploadParts(ctx context.Context, key string, uploadID *string, body []byte) error {
	var parts []types.CompletedPart
	for n, off := int32(1), 0; off < len(body); n, off = n+1, off+w.opts.PartSize {
		chunk := body[off:min(off+w.opts.PartSize, len(body))]
		if err := w.wait(ctx, len(chunk)); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, w.opts.RequestTimeout)
		out, err := w.client.UploadPart(pctx, &s3.UploadPartInput{
			Bucket: aws.String(w.cfg.Bucket), Key: aws.String(key), UploadId: uploadID, PartNumber: aws.Int32(n),
			Body: bytes.NewReader(chunk), ContentLength: aws.Int64(int64(len(chunk))), ContentMD5: contentMD5(chunk),
		})
		cancel()
		if err != nil {
			return fmt.Errorf("upload part %d: %w", n, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	cctx, cancel := context.WithTimeout(ctx, w.opts.RequestTimeout)
	defer cancel()
	if _, err := w.client.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(w.cfg.Bucket), Key: aws.String(key), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// taggedCredentials marks credential failures with ErrCredentials, so
// they are classified permanent instead of retried as network errors.
type taggedCredentials struct{ p aws.CredentialsProvider }

func (t taggedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := t.p.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return c, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	return c, err
}
