package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

func TestIteratorCodec(t *testing.T) {
	s := signer{key: []byte("k")}
	now := time.UnixMilli(1_700_000_000_000)
	in := iterator{Issued: now.UnixMilli(), StreamCreated: 42, Next: 1 << 40, Stream: strings.Repeat("s", 128), Shard: "shardId-000000000123"}
	tok := s.encodeIterator(in)
	if len(tok) > 512 {
		t.Fatalf("iterator is %d characters; the Kinesis model allows 512", len(tok))
	}
	out, err := s.decodeIterator(tok, now.Add(IteratorTTL))
	if err != nil || out != in {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	if _, err := s.decodeIterator(tok, now.Add(IteratorTTL+time.Millisecond)); toAPIError(err).Type != errExpiredIterator {
		t.Fatalf("expired: %v", err)
	}
	// Every single-byte change is caught.
	raw := []byte(tok)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		if _, err := s.decodeIterator(string(b), now); err == nil {
			t.Fatalf("changed byte %d accepted", i)
		}
	}
	// A page token is not an iterator and vice versa.
	pt := s.encodeToken(pageToken{Issued: now.UnixMilli(), Stream: "x"})
	if _, err := s.decodeIterator(pt, now); err == nil {
		t.Fatal("page token accepted as iterator")
	}
	if _, err := s.decodeToken(tok, now); err == nil {
		t.Fatal("iterator accepted as page token")
	}
}

func FuzzDecodeIterator(f *testing.F) {
	s := signer{key: []byte("k")}
	f.Add(s.encodeIterator(iterator{Issued: 1, Stream: "a", Shard: "b"}))
	f.Add("")
	f.Add("SQ")
	f.Fuzz(func(t *testing.T, tok string) {
		_, _ = s.decodeIterator(tok, time.UnixMilli(0))
		_, _ = s.decodeToken(tok, time.UnixMilli(0))
	})
}

func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err    error
		typ    string
		status int
	}{
		{shards.ErrStreamNotFound, errResourceNotFound, 400},
		{shards.ErrConsumerExists, errResourceInUse, 400},
		{shards.ErrThrottled, errThroughputExceeded, 400},
		{shards.ErrFull, errThroughputExceeded, 400},
		{shards.ErrLimitExceeded, errLimitExceeded, 400},
		{shards.ErrInvalidKey, errValidation, 400},
		{shards.ErrTooLarge, errInvalidArgument, 400},
		{shards.ErrClosed, errServiceUnavailable, 503},
		{shards.ErrUnavailable, errInternalFailure, 500},
		{errors.New("bug"), errInternalFailure, 500},
	} {
		ae := toAPIError(errors.Join(errors.New("context"), c.err))
		if ae.Type != c.typ || ae.Status != c.status {
			t.Errorf("%v -> %s %d, want %s %d", c.err, ae.Type, ae.Status, c.typ, c.status)
		}
	}
	if entryErrorCode(shards.ErrFull) != errThroughputExceeded || entryErrorCode(shards.ErrUnavailable) != errInternalFailure {
		t.Error("PutRecords entry codes")
	}
}

func TestARNs(t *testing.T) {
	s := mustNew(t, Config{}, nil, Options{Region: "eu-west-1", AccountID: "123456789012"})
	if got := s.streamARN("t"); got != "arn:aws:kinesis:eu-west-1:123456789012:stream/t" {
		t.Fatal(got)
	}
	for arn, want := range map[string]string{
		"arn:aws:kinesis:local:000000000000:stream/t":    "t",
		"arn:aws-cn:kinesis:cn-north-1:1:stream/a.b_c-d": "a.b_c-d",
	} {
		if got, ok := streamNameFromARN(arn); !ok || got != want {
			t.Errorf("%s -> %q %v", arn, got, ok)
		}
	}
	for _, bad := range []string{"", "t", "arn:aws:s3:::b", "arn:aws:kinesis:r:a:stream/", "arn:aws:kinesis:r:a:stream/a/consumer/b:1"} {
		if _, ok := streamNameFromARN(bad); ok {
			t.Errorf("%q accepted as a stream ARN", bad)
		}
	}
	st, name, ok := consumerFromARN("arn:aws:kinesis:local:0:stream/s/consumer/forwarder:cloud:1700000000")
	if !ok || st != "s" || name != "forwarder:cloud" {
		t.Fatalf("consumer ARN -> %q %q %v", st, name, ok)
	}
}
