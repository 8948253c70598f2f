package s3sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weir-gateway/weir/shards"
)

// ReadAPI is what ReadAll needs; *s3.Client has it.
type ReadAPI interface {
	s3.ListObjectsV2APIClient
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// StoredObject is an object of the archive, read back.
type StoredObject struct {
	Key      string
	Metadata map[string]string // x-amz-meta-* without the prefix
	Records  []*shards.Record
}

// ReadAll reads every object under prefix, in key order, and decodes it
// by its metadata (or, for objects without it, by its key's extension).
// An object whose records disagree with its metadata (count, first or
// last seq) is an error wrapping ErrCorrupt. It is meant for tests,
// audits and small archives: it holds everything in memory.
func ReadAll(ctx context.Context, api ReadAPI, bucket, prefix string) ([]StoredObject, error) {
	var out []StoredObject
	pages := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("s3sink: list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			obj, err := readObject(ctx, api, bucket, aws.ToString(o.Key))
			if err != nil {
				return out, err
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

func readObject(ctx context.Context, api ReadAPI, bucket, key string) (StoredObject, error) {
	got, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return StoredObject{}, fmt.Errorf("s3sink: get s3://%s/%s: %w", bucket, key, err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil {
		return StoredObject{}, fmt.Errorf("s3sink: get s3://%s/%s: %w", bucket, key, err)
	}
	obj := StoredObject{Key: key, Metadata: got.Metadata}
	format, compression := obj.Metadata["format"], obj.Metadata["compression"]
	if format == "" {
		format = FormatJSONL
		if strings.Contains(key, "."+FormatRaw) {
			format = FormatRaw
		}
		compression = "" // tell from the bytes
	}
	if obj.Records, err = Decode(bytes.NewReader(body), format, compression); err != nil {
		return obj, fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	if n := obj.Metadata["records"]; n != "" && n != fmt.Sprint(len(obj.Records)) {
		return obj, fmt.Errorf("%w: s3://%s/%s has %d records, its metadata says %s", ErrCorrupt, bucket, key, len(obj.Records), n)
	}
	if len(obj.Records) > 0 {
		first, last := shards.FormatIndex(obj.Records[0].Seq), shards.FormatIndex(obj.Records[len(obj.Records)-1].Seq)
		if f, l := obj.Metadata["first-seq"], obj.Metadata["last-seq"]; (f != "" && f != first) || (l != "" && l != last) {
			return obj, fmt.Errorf("%w: s3://%s/%s holds seqs %s..%s, its metadata says %s..%s", ErrCorrupt, bucket, key, first, last, f, l)
		}
	}
	return obj, nil
}
