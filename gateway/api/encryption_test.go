package api

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func writeStreamKey(t *testing.T, dir, name string, seed byte) {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = seed ^ byte(i*29)
	}
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *env) getAll(stream string) ([]types.Record, error) {
	e.t.Helper()
	ctx := e.ctx()
	var out []types.Record
	ls, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, err
	}
	for _, sh := range ls.Shards {
		it, err := e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return nil, err
		}
		iter := it.ShardIterator
		for iter != nil {
			r, err := e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return out, err
			}
			out = append(out, r.Records...)
			if len(r.Records) == 0 {
				break
			}
			iter = r.NextShardIterator
		}
	}
	return out, nil
}

func TestStreamEncryptionAPI(t *testing.T) {
	keys := t.TempDir()
	writeStreamKey(t, keys, "alias/edge", 1)
	o := envOptions{keysDir: keys}
	e := newEnv(t, o)
	ctx := e.ctx()
	e.createStream("enc", 2)
	put := func(data string) *kinesis.PutRecordOutput {
		t.Helper()
		out, err := e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("enc"), PartitionKey: aws.String("k-" + data), Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if p := put("plain-1"); p.EncryptionType != types.EncryptionTypeNone {
		t.Fatalf("EncryptionType before start: %q", p.EncryptionType)
	}
	keyARN := "arn:aws:kms:us-east-1:000000000000:alias/edge"
	if _, err := e.kc.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("enc"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String(keyARN)}); err != nil {
		t.Fatal(err)
	}
	d, err := e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("enc")})
	if err != nil || d.StreamDescription.EncryptionType != types.EncryptionTypeKms || aws.ToString(d.StreamDescription.KeyId) != keyARN {
		t.Fatalf("DescribeStream after start: %+v %v", d, err)
	}
	sum, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("enc")})
	if err != nil || sum.StreamDescriptionSummary.EncryptionType != types.EncryptionTypeKms || aws.ToString(sum.StreamDescriptionSummary.KeyId) != keyARN {
		t.Fatalf("DescribeStreamSummary after start: %+v %v", sum, err)
	}
	if p := put("secret-1"); p.EncryptionType != types.EncryptionTypeKms {
		t.Fatalf("EncryptionType after start: %q", p.EncryptionType)
	}
	pr, err := e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("enc"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("a"), Data: []byte("secret-2")}, {PartitionKey: aws.String("b"), Data: []byte("secret-3")}}})
	if err != nil || aws.ToInt32(pr.FailedRecordCount) != 0 || pr.EncryptionType != types.EncryptionTypeKms {
		t.Fatalf("PutRecords: %+v %v", pr, err)
	}
	recs, err := e.getAll("enc")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range recs {
		got[string(r.Data)] = true
	}
	for _, want := range []string{"plain-1", "secret-1", "secret-2", "secret-3"} {
		if !got[want] {
			t.Fatalf("GetRecords did not return %q (got %v)", want, got)
		}
	}

	// The key goes missing: reads and writes answer KMSNotFoundException.
	e.close()
	if err := os.Remove(filepath.Join(keys, "alias", "edge")); err != nil {
		t.Fatal(err)
	}
	e.restart(o)
	ctx = e.ctx()
	_, err = e.getAll("enc")
	wantCode(t, err, errKMSNotFound)
	_, err = e.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("enc"), PartitionKey: aws.String("x"), Data: []byte("x")})
	wantCode(t, err, errKMSNotFound)
	_, err = e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("enc"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("a"), Data: []byte("x")}}})
	wantCode(t, err, errKMSNotFound)

	// Another key under the same name: KMSAccessDeniedException.
	writeStreamKey(t, keys, "alias/edge", 2)
	e.restart(o)
	_, err = e.getAll("enc")
	wantCode(t, err, errKMSAccessDenied)

	// Stop needs the current KeyId; afterwards records are plain again.
	_, err = e.kc.StopStreamEncryption(e.ctx(), &kinesis.StopStreamEncryptionInput{StreamName: aws.String("enc"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/other")})
	wantCode(t, err, errInvalidArgument)
	if _, err := e.kc.StopStreamEncryption(e.ctx(), &kinesis.StopStreamEncryptionInput{StreamName: aws.String("enc"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/edge")}); err != nil {
		t.Fatal(err)
	}
	d, err = e.kc.DescribeStream(e.ctx(), &kinesis.DescribeStreamInput{StreamName: aws.String("enc")})
	if err != nil || d.StreamDescription.EncryptionType != types.EncryptionTypeNone || d.StreamDescription.KeyId != nil {
		t.Fatalf("DescribeStream after stop: %+v %v", d.StreamDescription, err)
	}
}

func TestStreamEncryptionErrors(t *testing.T) {
	keys := t.TempDir()
	writeStreamKey(t, keys, "good", 1)
	writeStreamKey(t, keys, "open", 2)
	if err := os.Chmod(filepath.Join(keys, "open"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{keysDir: keys})
	ctx := e.ctx()
	e.createStream("s", 1)
	start := func(stream, key string) error {
		_, err := e.kc.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String(stream), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String(key)})
		return err
	}
	for _, c := range []struct{ stream, key, code string }{
		{"s", "missing", errKMSNotFound},
		{"s", "open", errKMSInvalidState},
		{"s", "../../etc/shadow", errInvalidArgument},
		{"nope", "good", errResourceNotFound},
	} {
		t.Run(fmt.Sprintf("%s/%s", c.stream, c.key), func(t *testing.T) { wantCode(t, start(c.stream, c.key), c.code) })
	}
	for _, c := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"StreamName": "s", "KeyId": "good"}, errValidation},
		{map[string]any{"StreamName": "s", "EncryptionType": "KMS"}, errValidation},
		{map[string]any{"StreamName": "s", "EncryptionType": "AES", "KeyId": "good"}, errValidation},
		{map[string]any{"StreamName": "s", "EncryptionType": "NONE", "KeyId": "good"}, errInvalidArgument},
		{map[string]any{"StreamName": "s", "EncryptionType": "KMS", "KeyId": ""}, errValidation},
	} {
		_, err := e.call(kinesisPrefix+"StartStreamEncryption", c.body, nil)
		if errCode(err) != c.code {
			t.Errorf("%v: %v, want %s", c.body, err, c.code)
		}
	}
	d, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	if err != nil || d.StreamDescriptionSummary.EncryptionType != types.EncryptionTypeNone {
		t.Fatalf("a refused start changed the stream: %+v %v", d, err)
	}
	// Stopping a plain stream is a no-op, as starting twice is a switch.
	if _, err := e.kc.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("good")}); err != nil {
		t.Fatal(err)
	}

	plain := newEnv(t, envOptions{})
	plain.createStream("s", 1)
	_, err = plain.kc.StartStreamEncryption(plain.ctx(), &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("good")})
	wantCode(t, err, errKMSDisabled)
	if !bytes.Contains([]byte(err.Error()), []byte("encryption.keys_dir")) {
		t.Fatalf("error does not say what to configure: %v", err)
	}
}
