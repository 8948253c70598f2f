package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signedRequest is a PutRecord signed by aws-sdk-go-v2's signer.
func signedRequest(tb testing.TB, body string, at time.Time) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:4588/", strings.NewReader(body))
	r.Header.Set("Content-Type", contentTypeJSON)
	r.Header.Set("X-Amz-Target", kinesisPrefix+"PutRecord")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDWRITER", SecretAccessKey: testSecrets["AKIDWRITER"]},
		r, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at); err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestVerifyMatchesSDKSigner checks the verifier against the SDK's signer
// directly, with query parameters and odd header spacing, and that one
// changed byte anywhere signed fails.
func TestVerifyMatchesSDKSigner(t *testing.T) {
	cs, err := parseCredentials("k.yaml", []byte(testKeys))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	verify := func(r *http.Request, body string) *authFailure {
		q, _ := url.ParseQuery(r.URL.RawQuery)
		sig, f := parseSigV4(r, q)
		if f != nil {
			return f
		}
		if f := sig.checkScope(r, q, at); f != nil {
			return f
		}
		return sig.verify(r, q, []byte(body), cs.signingKey(cs.keys[sig.accessKey], sig.date, sig.region))
	}
	body := `{"StreamName":"telemetry","PartitionKey":"k","Data":"eA=="}`
	r := signedRequest(t, body, at)
	if f := verify(r, body); f != nil {
		t.Fatalf("SDK-signed request refused: %+v", f)
	}
	q := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:4588/?b=2&a=1&a=0&sp=x%20y&u=%C3%A9~", strings.NewReader(body))
	q.Header = r.Header.Clone()
	q.Header.Del("Authorization")
	q.Header.Set("X-Amz-Meta", "  two   spaces  ")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDWRITER", SecretAccessKey: testSecrets["AKIDWRITER"]},
		q, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	if f := verify(q, body); f != nil {
		t.Fatalf("request with a query and spaced header refused: %+v", f)
	}
	if f := verify(r, strings.Replace(body, "eA==", "eQ==", 1)); f == nil || f.Type != errInvalidSignature {
		t.Fatalf("changed body: %+v", f)
	}
	r2 := r.Clone(context.Background())
	r2.Header.Set("X-Amz-Target", kinesisPrefix+"DeleteStream")
	if f := verify(r2, body); f == nil || f.Type != errInvalidSignature {
		t.Fatalf("changed target: %+v", f)
	}
	r3 := r.Clone(context.Background())
	r3.Host = "127.0.0.1:4589"
	if f := verify(r3, body); f == nil || f.Type != errInvalidSignature {
		t.Fatalf("changed host: %+v", f)
	}
}

func FuzzParseSigV4(f *testing.F) {
	r := signedRequest(f, "{}", time.Unix(1767225600, 0))
	f.Add(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"), "")
	f.Add("AWS4-HMAC-SHA256 Credential=A/20260101/r/kinesis/aws4_request,SignedHeaders=host,Signature=00", "20260101T000000Z", "")
	f.Add("", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20260101%2Fr%2Fkinesis%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=60")
	f.Add("AWS4-HMAC-SHA256 ,,=,Credential=////", "Thu, 01 Jan 2026 00:00:00 GMT", "X-Amz-Algorithm=x")
	f.Fuzz(func(t *testing.T, auth, date, query string) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader("{}"))
		req.URL.RawQuery = query
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		if date != "" {
			req.Header["X-Amz-Date"] = []string{date}
			req.Header["Date"] = []string{date}
		}
		q, _ := url.ParseQuery(query)
		sig, fail := parseSigV4(req, q)
		if fail != nil {
			if fail.Status != http.StatusBadRequest || fail.Type == "" || fail.reason == "" {
				t.Fatalf("refusal %+v", fail)
			}
			return
		}
		if sig.accessKey == "" || !sig.signs("host") || sig.amzDate == "" {
			t.Fatalf("accepted %+v", sig)
		}
		// Whatever parsed must verify without panicking, and fail.
		if sig.checkScope(req, q, sig.when) == nil {
			if sig.verify(req, q, []byte("{}"), []byte("key")) == nil {
				t.Fatalf("a fuzzed signature verified: %+v", sig)
			}
		}
	})
}

// BenchmarkVerify is the cost SigV4 adds to a request: parse, scope, body
// hash (of a 1 KiB PutRecord) and HMACs, with the signing key cached.
func BenchmarkVerify(b *testing.B) {
	cs, err := parseCredentials("k.yaml", []byte(testKeys))
	if err != nil {
		b.Fatal(err)
	}
	body := `{"StreamName":"telemetry","PartitionKey":"k","Data":"` + strings.Repeat("A", 1024) + `"}`
	at := time.Now()
	r := signedRequest(b, body, at)
	b.ReportAllocs()
	for b.Loop() {
		q, _ := url.ParseQuery(r.URL.RawQuery)
		sig, f := parseSigV4(r, q)
		if f == nil {
			f = sig.checkScope(r, q, at)
		}
		if f == nil {
			f = sig.verify(r, q, []byte(body), cs.signingKey(cs.keys[sig.accessKey], sig.date, sig.region))
		}
		if f != nil {
			b.Fatal(f)
		}
	}
}
