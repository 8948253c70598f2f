package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/weir-gateway/weir/internal/promtest"

	"github.com/weir-gateway/weir/shards"
)

// testKeys: an admin on everything (e.kc), a writer and a reader of
// "telemetry", and a key with every permission on "other" only.
const testKeys = `
- access_key_id: AKIDTEST
  secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
  streams: ["*"]
  permissions: [read, write, admin]
- access_key_id: AKIDWRITER
  secret_access_key: writer-secret-0123456789
  streams: [telemetry]
  permissions: [write]
- access_key_id: AKIDREADER
  secret_access_key: reader-secret-0123456789
  streams: [telemetry]
  permissions: [read]
- access_key_id: AKIDOTHER
  secret_access_key: other-secret-0123456789
  streams: [other]
  permissions: [read, write, admin]
`

var testSecrets = map[string]string{
	testKeyID: testSecret, "AKIDWRITER": "writer-secret-0123456789",
	"AKIDREADER": "reader-secret-0123456789", "AKIDOTHER": "other-secret-0123456789",
}

func newAuthEnv(t *testing.T, api Config) *env {
	t.Helper()
	e := newEnv(t, envOptions{keys: testKeys, api: api})
	e.createStream("telemetry", 1)
	e.createStream("other", 1)
	return e
}

// client is a Kinesis client signing with the given key.
func (e *env) client(id, secret string, opts ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		BaseEndpoint: aws.String(e.hs.URL), Region: "eu-central-1", RetryMaxAttempts: 1, HTTPClient: e.hc,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
	}, opts...)
}

func (e *env) as(id string) *kinesis.Client { return e.client(id, testSecrets[id]) }

// signedCall posts a raw JSON request signed by key id at time at.
func (e *env) signedCall(id, target, body string, at time.Time) (int, *apiError) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("X-Amz-Target", target)
	if id != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: testSecrets[id]}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, *apiError) {
	e.t.Helper()
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, nil
	}
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		e.t.Fatalf("error body %q: %v", b, err)
	}
	if got := resp.Header.Get("X-Amzn-ErrorType"); got != eb.Type {
		e.t.Fatalf("X-Amzn-ErrorType %q, __type %q", got, eb.Type)
	}
	return resp.StatusCode, &apiError{Status: resp.StatusCode, Type: eb.Type, Message: eb.Message}
}

func put(c *kinesis.Client, ctx context.Context, stream string) error {
	_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("x")})
	return err
}

func TestAuthPermissionsAndScope(t *testing.T) {
	e := newAuthEnv(t, Config{})
	ctx := e.ctx()
	writer, reader, other := e.as("AKIDWRITER"), e.as("AKIDREADER"), e.as("AKIDOTHER")

	if err := put(writer, ctx, "telemetry"); err != nil {
		t.Fatalf("writer PutRecord telemetry: %v", err)
	}
	err := put(writer, ctx, "other")
	wantCode(t, err, errAccessDenied)
	for _, want := range []string{"User: AKIDWRITER", "kinesis:PutRecord", "arn:aws:kinesis:local:000000000000:stream/other", "write on telemetry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("AccessDenied message %q lacks %q", err, want)
		}
	}
	_, err = writer.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("telemetry")})
	wantCode(t, err, errAccessDenied)

	wantCode(t, put(reader, ctx, "telemetry"), errAccessDenied)
	it, err := reader.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("telemetry"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "TRIM_HORIZON"})
	if err != nil {
		t.Fatalf("reader GetShardIterator: %v", err)
	}
	gr, err := reader.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(gr.Records) != 1 {
		t.Fatalf("reader GetRecords: %v %+v", err, gr)
	}
	// An iterator is checked against the key that uses it.
	_, err = other.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	wantCode(t, err, errAccessDenied)
	_, err = reader.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("telemetry2"), ShardCount: aws.Int32(1)})
	wantCode(t, err, errAccessDenied)
	_, err = reader.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("telemetry")})
	wantCode(t, err, errAccessDenied)
	// By ARN, in any region, is the same stream.
	_, err = other.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:111111111111:stream/telemetry")})
	wantCode(t, err, errAccessDenied)

	// Listings show only what the key may read.
	for id, want := range map[string][]string{testKeyID: {"other", "telemetry"}, "AKIDREADER": {"telemetry"}, "AKIDOTHER": {"other"}} {
		ls, err := e.as(id).ListStreams(ctx, &kinesis.ListStreamsInput{})
		if err != nil || strings.Join(ls.StreamNames, ",") != strings.Join(want, ",") {
			t.Errorf("%s ListStreams = %v, %v; want %v", id, ls.StreamNames, err, want)
		}
	}
	_, err = writer.ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantCode(t, err, errAccessDenied)
	var gw DescribeGatewayOutput
	if code, aerr := e.signedCallOut("AKIDREADER", weirPrefix+"DescribeGateway", `{}`, &gw); aerr != nil || len(gw.Streams) != 1 || gw.Streams[0].StreamName != "telemetry" {
		t.Errorf("reader DescribeGateway = %d %v %+v", code, aerr, gw)
	}

	// Admin on its own stream only.
	if _, err := other.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("other"), TargetShardCount: aws.Int32(2),
		ScalingType: "UNIFORM_SCALING"}); err != nil {
		t.Fatalf("other UpdateShardCount: %v", err)
	}
	if _, err := e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("other")}); err != nil {
		t.Fatalf("admin DeleteStream: %v", err)
	}
	if got := AccessKeyID(context.Background()); got != "" {
		t.Errorf("AccessKeyID of a bare context = %q", got)
	}
}

// signedCallOut is signedCall decoding a successful answer.
func (e *env) signedCallOut(id, target, body string, out any) (int, *apiError) {
	req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: testSecrets[id]}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "local", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		return resp.StatusCode, &apiError{Status: resp.StatusCode, Type: eb.Type, Message: eb.Message}
	}
	if err := json.Unmarshal(b, out); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, nil
}

// TestAuthEveryOperation runs every operation of the table on a stream
// the key may not use, and with a key lacking the operation's permission:
// each must be AccessDeniedException, so no handler forgot its check.
func TestAuthEveryOperation(t *testing.T) {
	e := newAuthEnv(t, Config{})
	ctx := e.ctx()
	it, err := e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("telemetry"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "TRIM_HORIZON"})
	if err != nil {
		t.Fatal(err)
	}
	if err := put(e.kc, ctx, "telemetry"); err != nil {
		t.Fatal(err)
	}
	const sn = `"StreamName":"telemetry"`
	bodies := map[string]string{
		"ListStreams":                   `{}`,
		"DescribeGateway":               `{}`,
		"DescribeStream":                `{` + sn + `}`,
		"DescribeStreamSummary":         `{` + sn + `}`,
		"ListShards":                    `{` + sn + `}`,
		"GetShardIterator":              `{` + sn + `,"ShardId":"shardId-000000000000","ShardIteratorType":"LATEST"}`,
		"GetRecords":                    `{"ShardIterator":"` + *it.ShardIterator + `"}`,
		"DescribeStreamConsumer":        `{"ConsumerARN":"arn:aws:kinesis:local:000000000000:stream/telemetry/consumer/c:1"}`,
		"ListStreamConsumers":           `{"StreamARN":"arn:aws:kinesis:local:000000000000:stream/telemetry"}`,
		"PutRecord":                     `{` + sn + `,"PartitionKey":"k","Data":"eA=="}`,
		"PutRecords":                    `{` + sn + `,"Records":[{"PartitionKey":"k","Data":"eA=="}]}`,
		"CreateStream":                  `{` + sn + `,"ShardCount":1}`,
		"DeleteStream":                  `{` + sn + `}`,
		"SplitShard":                    `{` + sn + `,"ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1000"}`,
		"MergeShards":                   `{` + sn + `,"ShardToMerge":"shardId-000000000000","AdjacentShardToMerge":"shardId-000000000001"}`,
		"UpdateShardCount":              `{` + sn + `,"TargetShardCount":2,"ScalingType":"UNIFORM_SCALING"}`,
		"UpdateStreamMode":              `{"StreamARN":"arn:aws:kinesis:local:000000000000:stream/telemetry","StreamModeDetails":{"StreamMode":"ON_DEMAND"}}`,
		"IncreaseStreamRetentionPeriod": `{` + sn + `,"RetentionPeriodHours":48}`,
		"DecreaseStreamRetentionPeriod": `{` + sn + `,"RetentionPeriodHours":1}`,
		"StartStreamEncryption":         `{` + sn + `,"EncryptionType":"KMS","KeyId":"k"}`,
		"StopStreamEncryption":          `{` + sn + `,"EncryptionType":"KMS","KeyId":"k"}`,
		"RegisterStreamConsumer":        `{"StreamARN":"arn:aws:kinesis:local:000000000000:stream/telemetry","ConsumerName":"c"}`,
		"DeregisterStreamConsumer":      `{"ConsumerARN":"arn:aws:kinesis:local:000000000000:stream/telemetry/consumer/c:1"}`,
		"SubscribeToShard":              `{"ConsumerARN":"arn:aws:kinesis:local:000000000000:stream/telemetry/consumer/c:1","ShardId":"shardId-000000000000","StartingPosition":{"Type":"LATEST"}}`,
		"CommitCheckpoint":              `{` + sn + `,"ConsumerName":"c","ShardId":"shardId-000000000000","SequenceNumber":"` + shards.FormatSeq("shardId-000000000000", 1) + `"}`,
		"GetCheckpoints":                `{` + sn + `,"ConsumerName":"c"}`,
		"AddTagsToStream":               `{` + sn + `,"Tags":{"a":"b"}}`,
		"RemoveTagsFromStream":          `{` + sn + `,"TagKeys":["a"]}`,
		"ListTagsForStream":             `{` + sn + `}`,
		"EnableEnhancedMonitoring":      `{` + sn + `,"ShardLevelMetrics":["ALL"]}`,
		"DisableEnhancedMonitoring":     `{` + sn + `,"ShardLevelMetrics":["ALL"]}`,
		"DescribeLimits":                `{}`,
		"WeirGetRecords":                `{"ShardIterator":"` + *it.ShardIterator + `"}`,
	}
	lacking := map[permission]string{permRead: "AKIDWRITER", permWrite: "AKIDREADER", permAdmin: "AKIDREADER"}
	for target, spec := range e.srv.ops {
		name := target[strings.LastIndexByte(target, '.')+1:]
		if strings.HasPrefix(target, weirPrefix) && name == "GetRecords" {
			name = "WeirGetRecords"
		}
		body, ok := bodies[name]
		if !ok {
			t.Errorf("%s: no test body; add one", target)
			continue
		}
		t.Run(name, func(t *testing.T) {
			_, aerr := e.signedCall(lacking[spec.perm], target, body, time.Now())
			if aerr == nil || aerr.Type != errAccessDenied {
				t.Errorf("key without %v: %v, want AccessDeniedException", spec.perm, aerr)
			}
			if name == "ListStreams" || name == "DescribeGateway" || name == "DescribeLimits" {
				return // they name no stream: covered by TestAuthPermissionsAndScope
			}
			_, aerr = e.signedCall("AKIDOTHER", target, body, time.Now())
			if aerr == nil || aerr.Type != errAccessDenied || !strings.Contains(aerr.Message, "stream/telemetry") {
				t.Errorf("key of another stream: %v, want AccessDeniedException naming stream/telemetry", aerr)
			}
		})
	}
	// A forwarder's checkpoint needs admin: a reader could make it skip records.
	_, aerr := e.signedCall("AKIDREADER", weirPrefix+"CommitCheckpoint", `{`+sn+`,"ConsumerName":"forwarder:up","ShardId":"shardId-000000000000","SequenceNumber":"`+shards.FormatSeq("shardId-000000000000", 1)+`"}`, time.Now())
	if aerr == nil || aerr.Type != errAccessDenied {
		t.Errorf("reader commits a forwarder checkpoint: %v", aerr)
	}
	if _, aerr := e.signedCall(testKeyID, weirPrefix+"CommitCheckpoint", `{`+sn+`,"ConsumerName":"forwarder:up","ShardId":"shardId-000000000000","SequenceNumber":"`+shards.FormatSeq("shardId-000000000000", 1)+`"}`, time.Now()); aerr != nil {
		t.Errorf("admin commits a forwarder checkpoint: %v", aerr)
	}
}

// tamper changes the body after the SDK signed it.
type tamper struct{ next http.RoundTripper }

func (t tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	b = bytes.Replace(b, []byte(`"k"`), []byte(`"K"`), 1)
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return t.next.RoundTrip(r)
}

func TestAuthFailures(t *testing.T) {
	e := newAuthEnv(t, Config{})
	ctx := e.ctx()
	wantCode(t, put(e.client("AKIDWRITER", "not-the-secret-0123456789"), ctx, "telemetry"), errInvalidSignature)
	wantCode(t, put(e.client("AKIDNOBODY", "whatever-secret-0123456789"), ctx, "telemetry"), errUnrecognized)
	wantCode(t, put(e.client("AKIDWRITER", testSecrets["AKIDWRITER"], func(o *kinesis.Options) {
		o.HTTPClient = &http.Client{Transport: tamper{e.hc.Transport}}
	}), ctx, "telemetry"), errInvalidSignature)

	body := `{"StreamName":"telemetry","PartitionKey":"k","Data":"eA=="}`
	if _, aerr := e.signedCall("", kinesisPrefix+"PutRecord", body, time.Now()); aerr == nil || aerr.Type != errMissingToken || aerr.Status != 400 {
		t.Errorf("unsigned: %+v", aerr)
	}
	// Signed 6 minutes in the past and in the future.
	_, aerr := e.signedCall("AKIDWRITER", kinesisPrefix+"PutRecord", body, time.Now().Add(-6*time.Minute))
	if aerr == nil || aerr.Type != errInvalidSignature || !strings.HasPrefix(aerr.Message, "Signature expired: ") {
		t.Errorf("6 min old: %+v", aerr)
	}
	_, aerr = e.signedCall("AKIDWRITER", kinesisPrefix+"PutRecord", body, time.Now().Add(6*time.Minute))
	if aerr == nil || aerr.Type != errInvalidSignature || !strings.HasPrefix(aerr.Message, "Signature not yet current: ") {
		t.Errorf("6 min ahead: %+v", aerr)
	}
	// The SDK itself with the gateway's clock 6 minutes ahead.
	e.clock.Advance(6 * time.Minute)
	wantCode(t, put(e.as("AKIDWRITER"), ctx, "telemetry"), errInvalidSignature)
	e.clock.Advance(-6 * time.Minute)

	raw := func(auth string, hdr map[string]string) *apiError {
		req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", kinesisPrefix+"PutRecord")
		req.Header.Set("Authorization", auth)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		_, aerr := e.do(req)
		return aerr
	}
	now := time.Now().UTC()
	date := now.Format(amzDateLayout)
	for name, c := range map[string]struct {
		auth, typ string
		hdr       map[string]string
	}{
		"basic":           {"Basic dXNlcjpwdw==", errIncompleteSig, nil},
		"no_signature":    {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/" + date[:8] + "/x/kinesis/aws4_request, SignedHeaders=host;x-amz-date", errIncompleteSig, map[string]string{"X-Amz-Date": date}},
		"short_cred":      {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/x, SignedHeaders=host, Signature=00", errIncompleteSig, nil},
		"no_date":         {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/" + date[:8] + "/x/kinesis/aws4_request, SignedHeaders=host;x-amz-target, Signature=00", errIncompleteSig, nil},
		"host_unsigned":   {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/" + date[:8] + "/x/kinesis/aws4_request, SignedHeaders=x-amz-date, Signature=00", errIncompleteSig, map[string]string{"X-Amz-Date": date}},
		"target_unsigned": {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/" + date[:8] + "/x/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", errIncompleteSig, map[string]string{"X-Amz-Date": date}},
		"wrong_service":   {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/" + date[:8] + "/x/s3/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00", errInvalidSignature, map[string]string{"X-Amz-Date": date}},
		"scope_date":      {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/20200101/x/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00", errInvalidSignature, map[string]string{"X-Amz-Date": date}},
		"bad_hex":         {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/" + date[:8] + "/x/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=deadbeef", errInvalidSignature, map[string]string{"X-Amz-Date": date}},
		"content_sha":     {"AWS4-HMAC-SHA256 Credential=AKIDWRITER/" + date[:8] + "/x/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00", errInvalidSignature, map[string]string{"X-Amz-Date": date, "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}},
	} {
		if aerr := raw(c.auth, c.hdr); aerr == nil || aerr.Type != c.typ || aerr.Status != 400 {
			t.Errorf("%s: %+v, want %s", name, aerr, c.typ)
		}
	}
	if n := e.store.Metrics().Appended; n != 0 {
		t.Errorf("%d records stored by refused requests", n)
	}
	m := promtest.Scrape(t, e.hc, e.hs.URL+"/metrics")
	for reason, n := range map[string]float64{"bad_signature": 4, "unknown_key": 1, "missing_signature": 1, "expired": 3} {
		m.Want(t, n, "weir_api_auth_failures_total", "reason", reason)
	}
}

func TestAuthPresigned(t *testing.T) {
	e := newAuthEnv(t, Config{})
	body := `{"StreamName":"telemetry","PartitionKey":"k","Data":"eA=="}`
	presign := func(at time.Time, expires string, id string) *apiError {
		u := e.hs.URL + "/"
		if expires != "" {
			u += "?X-Amz-Expires=" + expires
		}
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", contentTypeJSON)
		req.Header.Set("X-Amz-Target", kinesisPrefix+"PutRecord")
		sum := sha256.Sum256([]byte(body))
		signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: testSecrets[id]},
			req, hex.EncodeToString(sum[:]), "kinesis", "ap-south-1", at)
		if err != nil {
			t.Fatal(err)
		}
		pr, _ := http.NewRequest(http.MethodPost, signed, strings.NewReader(body))
		pr.Header = req.Header.Clone()
		_, aerr := e.do(pr)
		return aerr
	}
	if aerr := presign(time.Now(), "", "AKIDWRITER"); aerr != nil {
		t.Fatalf("presigned PutRecord: %+v", aerr)
	}
	if aerr := presign(time.Now().Add(-time.Hour), "7200", "AKIDWRITER"); aerr != nil {
		t.Fatalf("presigned an hour ago for two: %+v", aerr)
	}
	if aerr := presign(time.Now().Add(-time.Hour), "60", "AKIDWRITER"); aerr == nil || aerr.Type != errInvalidSignature || !strings.HasPrefix(aerr.Message, "Signature expired") {
		t.Fatalf("expired presign: %+v", aerr)
	}
	if aerr := presign(time.Now(), "", "AKIDREADER"); aerr == nil || aerr.Type != errAccessDenied {
		t.Fatalf("presigned by a reader: %+v", aerr)
	}
}

func TestHostCheck(t *testing.T) {
	for _, keys := range []string{"", testKeys} {
		e := newEnv(t, envOptions{keys: keys, api: Config{AllowedHosts: []string{"gateway.local", "*.plant.example"}}})
		e.createStream("telemetry", 1)
		port := e.hs.URL[strings.LastIndexByte(e.hs.URL, ':'):]
		for host, ok := range map[string]bool{
			"evil.example": false, "evil.example" + port: false, "gateway.local.evil.example": false, "plant.example": false,
			"localhost" + port: true, "LOCALHOST": true, "127.0.0.1" + port: true, "[::1]" + port: true, "10.1.2.3": true,
			"Gateway.Local" + port: true, "gateway.local.": true, "a.plant.example": true, "b.a.plant.example" + port: true,
		} {
			req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", strings.NewReader(`{}`))
			req.Host = host
			req.Header.Set("X-Amz-Target", kinesisPrefix+"ListStreams")
			req.Header.Set("Content-Type", contentTypeJSON)
			if keys != "" {
				sum := sha256.Sum256([]byte(`{}`))
				_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
					req, hex.EncodeToString(sum[:]), "kinesis", "local", time.Now())
			}
			code, aerr := e.do(req)
			if ok != (aerr == nil) {
				t.Errorf("keys=%v Host %q: %d %+v, want allowed=%v", keys != "", host, code, aerr, ok)
			}
			if !ok && (code != http.StatusForbidden || aerr.Type != errAccessDenied || !strings.Contains(aerr.Message, "api.allowed_hosts")) {
				t.Errorf("Host %q refused with %d %+v", host, code, aerr)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, e.hs.URL+"/metrics", nil)
		req.Host = "evil.example"
		if code, _ := e.do(req); code != http.StatusForbidden {
			t.Errorf("/metrics with a foreign Host: %d", code)
		}
	}
}

func TestNewRefusesExposedListen(t *testing.T) {
	_, err := New(Config{Listen: "0.0.0.0:4588"}, nil, Options{})
	if !errors.Is(err, ErrExposed) {
		t.Fatalf("New = %v, want ErrExposed", err)
	}
	for _, ok := range []Config{{Listen: "0.0.0.0:4588", AllowAnonymous: true}, {Listen: "127.0.0.1:4588"}, {Listen: "localhost:0"}} {
		if _, err := New(ok, nil, Options{}); err != nil {
			t.Errorf("New(%+v) = %v", ok, err)
		}
	}
}

func TestFailureGuard(t *testing.T) {
	clock := newTestClock()
	g := newFailureGuard()
	g.now, g.max = clock.Now, 3
	for i := range guardBurst {
		if d := g.delay("192.0.2.1:1000"); d != 0 {
			t.Fatalf("failure %d delayed %v within the burst", i, d)
		}
	}
	if d := g.delay("192.0.2.1:1001"); d != time.Second {
		t.Fatalf("first failure past the burst: %v, want 1s", d)
	}
	if d := g.delay("192.0.2.1:1002"); d != 2*time.Second {
		t.Fatalf("second: %v, want 2s", d)
	}
	for range 10 {
		g.delay("192.0.2.1:1003")
	}
	if d := g.delay("192.0.2.1:1004"); d != guardMaxDelay {
		t.Fatalf("a loop is held %v, want the cap %v", d, guardMaxDelay)
	}
	if d := g.delay("198.51.100.7:1"); d != 0 {
		t.Fatalf("another address is delayed %v", d)
	}
	clock.Advance(guardMaxDelay + guardBurst*time.Second)
	if d := g.delay("192.0.2.1:1005"); d != 0 {
		t.Fatalf("after a quiet spell: %v", d)
	}
	for i := range 10 {
		g.delay(fmt.Sprintf("203.0.113.%d:1", i))
	}
	if len(g.addrs) > g.max {
		t.Fatalf("guard tracks %d addresses, bound %d", len(g.addrs), g.max)
	}
}
