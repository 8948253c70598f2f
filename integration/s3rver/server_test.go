package s3rver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// TestRoundTrip checks that the emulator stores and returns an object
// with its metadata, and refuses a bucket it does not have.
func TestRoundTrip(t *testing.T) {
	s := Start(t, "archive")
	c := NewClient(s.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body := []byte("hello s3rver")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("archive"), Key: aws.String("a/b.txt"),
		Body: bytes.NewReader(body), Metadata: map[string]string{"first-seq": "7"}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("archive"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) || out.Metadata["first-seq"] != "7" {
		t.Fatalf("got %q %v", got, out.Metadata)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nope"), Key: aws.String("x"), Body: bytes.NewReader(body)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchBucket" {
		t.Fatalf("put into a missing bucket: %v", err)
	}
}
