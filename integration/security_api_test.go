package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// Issue 11 on the Kinesis API: SigV4 with keys from api.credentials_file,
// scoped by stream and permission, checked with the AWS CLI and curl's
// own SigV4 signer, over plain HTTP and TLS.

// apiCredentials is an api.credentials_file: a YAML list, one entry per
// local application.
const apiCredentials = `- access_key_id: AKIDREADER00000000001
  secret_access_key: reader-secret-000000000000000000000001
  streams: [telemetry]
  permissions: [read]
- access_key_id: AKIDWRITER00000000001
  secret_access_key: writer-secret-000000000000000000000001
  streams: [telemetry]
  permissions: [write]
- access_key_id: AKIDADMIN000000000001
  secret_access_key: admin-secret-0000000000000000000000001
  streams: ["*"]
  permissions: [read, write, admin]
`

type apiKey struct{ id, secret string }

var (
	readerKey  = apiKey{"AKIDREADER00000000001", "reader-secret-000000000000000000000001"}
	writerKey  = apiKey{"AKIDWRITER00000000001", "writer-secret-000000000000000000000001"}
	adminKey   = apiKey{"AKIDADMIN000000000001", "admin-secret-0000000000000000000000001"}
	unknownKey = apiKey{"AKIDNOBODY00000000001", "whatever"}
	badSecret  = apiKey{"AKIDADMIN000000000001", "not-the-admin-secret"}
	noKey      = apiKey{}
)

// secureAPI starts a gateway whose API checks SigV4 against
// apiCredentials, allows Host gateway.local, and serves TLS with pki's
// server certificate when pki is not nil. It returns the endpoint URL.
func secureAPI(t *testing.T, pki *harness.PKI) (*harness.Weir, string) {
	t.Helper()
	creds := filepath.Join(t.TempDir(), "api-keys.yaml")
	writeFile(t, creds, apiCredentials)
	tlsKeys := ""
	if pki != nil {
		tlsKeys = fmt.Sprintf("  tls:\n    cert_file: %q\n    key_file: %q\n", pki.ServerCert, pki.ServerKey)
	}
	w := harness.StartWeir(t, harness.Opts{YAML: `data_dir: "{{.DataDir}}"
mqtt:
  listen: {{.MQTT}}
api:
  listen: {{.API}}
  credentials_file: "` + creds + `"
  allowed_hosts: [gateway.local]
` + tlsKeys + `streams:
  - name: telemetry
    shards: 2
  - name: other
    shards: 1
`})
	if pki != nil {
		return w, "https://" + w.APIAddr
	}
	return w, w.APIURL()
}

// awsKinesis runs `aws kinesis ARGS` against endpoint with key (none:
// --no-sign-request), in an environment with no other credentials.
func awsKinesis(t *testing.T, endpoint string, key apiKey, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("the AWS CLI is not installed (Debian: awscli; or run scripts/install-deps.sh)")
	}
	home := t.TempDir()
	args = append(append([]string{"kinesis"}, args...), "--endpoint-url", endpoint, "--output", "json", "--region", "us-east-1")
	if ver, _ := exec.Command(bin, "--version").CombinedOutput(); strings.HasPrefix(string(ver), "aws-cli/2") {
		args = append(args, "--cli-binary-format", "raw-in-base64-out", "--no-cli-pager")
	}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none", "AWS_MAX_ATTEMPTS=1"}
	if key == noKey {
		args = append(args, "--no-sign-request")
	} else {
		env = append(env, "AWS_ACCESS_KEY_ID="+key.id, "AWS_SECRET_ACCESS_KEY="+key.secret)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	if ee != nil {
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// TestAPICredentials: every request needs a known key and a good
// signature, and each key may do only what its entry permits on its
// streams; the errors carry the __type the SDKs map to classes. A request
// signed by a valid key but sent with a foreign Host header (DNS
// rebinding) is refused; api.allowed_hosts and loopback names pass.
// Keys: api.credentials_file, api.allowed_hosts.
func TestAPICredentials(t *testing.T) {
	w, ep := secureAPI(t, nil)
	ok := func(key apiKey, args ...string) string {
		t.Helper()
		out, stderr, code := awsKinesis(t, ep, key, args...)
		if code != 0 {
			t.Fatalf("aws kinesis %s as %s: exit %d: %s", args[0], key.id, code, stderr)
		}
		return out
	}
	refused := func(key apiKey, errType string, args ...string) {
		t.Helper()
		_, stderr, code := awsKinesis(t, ep, key, args...)
		if code == 0 || !strings.Contains(stderr, "("+errType+")") {
			t.Errorf("aws kinesis %s as %q: exit %d, want %s:\n%s", args[0], key.id, code, errType, stderr)
		}
	}

	var put struct{ ShardId string }
	if err := json.Unmarshal([]byte(ok(writerKey, "put-record", "--stream-name", "telemetry", "--partition-key", "k1", "--data", "from-writer")), &put); err != nil || put.ShardId == "" {
		t.Fatalf("put-record answer: %v %+v", err, put)
	}
	var it struct{ ShardIterator string }
	if err := json.Unmarshal([]byte(ok(readerKey, "get-shard-iterator", "--stream-name", "telemetry", "--shard-id", put.ShardId, "--shard-iterator-type", "TRIM_HORIZON")), &it); err != nil {
		t.Fatal(err)
	}
	var gr struct{ Records []struct{ Data string } }
	if err := json.Unmarshal([]byte(ok(readerKey, "get-records", "--shard-iterator", it.ShardIterator)), &gr); err != nil {
		t.Fatal(err)
	}
	if len(gr.Records) != 1 || gr.Records[0].Data != base64.StdEncoding.EncodeToString([]byte("from-writer")) {
		t.Errorf("the reader got %+v, want the writer's one record", gr.Records)
	}

	// Who may do what: write, read and admin are separate; streams scope
	// them. (gateway/api TestAuthEveryOperation checks every operation
	// through the Go SDK; here the real CLI meets one of each kind, as the
	// CLI costs a second or more per call.)
	refused(readerKey, "AccessDeniedException", "put-record", "--stream-name", "telemetry", "--partition-key", "k", "--data", "FORGED by reader")
	refused(writerKey, "AccessDeniedException", "get-shard-iterator", "--stream-name", "telemetry", "--shard-id", put.ShardId, "--shard-iterator-type", "TRIM_HORIZON")
	refused(writerKey, "AccessDeniedException", "put-record", "--stream-name", "other", "--partition-key", "k", "--data", "FORGED other stream")
	refused(writerKey, "AccessDeniedException", "delete-stream", "--stream-name", "telemetry")
	ok(adminKey, "create-stream", "--stream-name", "made-by-admin", "--shard-count", "1")

	// Who you are: no signature, an unknown key, a wrong secret.
	refused(noKey, "MissingAuthenticationTokenException", "delete-stream", "--stream-name", "telemetry")
	refused(unknownKey, "UnrecognizedClientException", "put-record", "--stream-name", "telemetry", "--partition-key", "k", "--data", "FORGED unknown key")
	refused(badSecret, "InvalidSignatureException", "put-record", "--stream-name", "telemetry", "--partition-key", "k", "--data", "FORGED bad signature")

	// The Host header: curl signs the request with the Host it sends.
	for _, c := range []struct {
		host, data string
		ok         bool
	}{
		{"", "curl loopback host", true},
		{"gateway.local", "curl allowed host", true},
		{"evil.example", "FORGED foreign host", false},
		{"gateway.local.evil.example", "FORGED suffix host", false},
	} {
		status, body := curlPutRecord(t, ep, c.host, adminKey, "telemetry", c.data, "")
		if c.ok != (status == 200) {
			t.Errorf("PutRecord signed by a valid key with Host %q: HTTP %d %s, want accepted=%v", c.host, status, body, c.ok)
		}
	}

	w.Stop()
	got := map[string]bool{}
	for _, l := range harness.Dump(t, w.DataDir, "telemetry") {
		got[string(l.Data)] = true
	}
	for _, d := range []string{"from-writer", "curl loopback host", "curl allowed host"} {
		if !got[d] {
			t.Errorf("%q was accepted but is not stored", d)
		}
		delete(got, d)
	}
	for d := range got {
		t.Errorf("%q is stored but was refused", d)
	}
}

// curlPutRecord sends a PutRecord signed by curl --aws-sigv4, with host as
// the Host header ("" = curl's own) and caFile for https.
func curlPutRecord(t *testing.T, endpoint, host string, key apiKey, stream, data, caFile string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"StreamName": stream, "PartitionKey": "curl", "Data": base64.StdEncoding.EncodeToString([]byte(data))})
	args := []string{"-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10",
		"--aws-sigv4", "aws:amz:us-east-1:kinesis", "--user", key.id + ":" + key.secret,
		"-H", "X-Amz-Target: Kinesis_20131202.PutRecord", "-H", "Content-Type: application/x-amz-json-1.1",
		"--data-binary", string(body)}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	if caFile != "" {
		args = append(args, "--cacert", caFile)
	}
	out, code := runTool(t, "", "curl", append(args, endpoint+"/")...)
	if code != 0 {
		t.Fatalf("curl: exit %d: %s", code, out)
	}
	i := strings.LastIndexByte(out, '\n')
	var status int
	fmt.Sscan(out[i+1:], &status)
	return status, out[:i]
}

// TestAPIOverTLS: with api.tls the AWS CLI reaches the API over https
// when it trusts the CA (--ca-bundle) and refuses it otherwise; plain
// http to the TLS port gets nothing.
// Keys: api.tls.cert_file, api.tls.key_file.
func TestAPIOverTLS(t *testing.T) {
	pki := harness.NewPKI(t)
	w, ep := secureAPI(t, pki)
	out, stderr, code := awsKinesis(t, ep, adminKey, "list-streams", "--ca-bundle", pki.CAFile)
	if code != 0 || !strings.Contains(out, "telemetry") {
		t.Fatalf("aws kinesis list-streams over TLS with --ca-bundle: exit %d: %s%s", code, out, stderr)
	}
	if _, stderr, code := awsKinesis(t, ep, writerKey, "put-record", "--stream-name", "telemetry", "--partition-key", "k", "--data", "over tls", "--ca-bundle", pki.CAFile); code != 0 {
		t.Errorf("put-record over TLS: exit %d: %s", code, stderr)
	}
	if _, stderr, code := awsKinesis(t, ep, adminKey, "list-streams"); code == 0 || !strings.Contains(strings.ToLower(stderr), "ssl") {
		t.Errorf("list-streams over TLS without the CA: exit %d, want an SSL validation failure:\n%s", code, stderr)
	}
	if status, body := curlPutRecord(t, ep, "", writerKey, "telemetry", "curl over tls", pki.CAFile); status != 200 {
		t.Errorf("curl --aws-sigv4 over TLS: HTTP %d %s", status, body)
	}
	// Plain HTTP to the TLS port is refused: Go's server answers 400
	// "Client sent an HTTP request to an HTTPS server" and serves nothing.
	if out, code := runTool(t, "", "curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
		"-X", "POST", "-H", "X-Amz-Target: Kinesis_20131202.ListStreams", "-d", "{}", "http://"+w.APIAddr+"/"); code == 0 && strings.TrimSpace(out) != "400" {
		t.Errorf("plain http to the TLS API: HTTP %s, want a refusal (400 or no answer)", out)
	}
	w.Stop()
	got := map[string]bool{}
	for _, l := range harness.Dump(t, w.DataDir, "telemetry") {
		got[string(l.Data)] = true
	}
	if len(got) != 2 || !got["over tls"] || !got["curl over tls"] {
		t.Errorf("stored %v, want the two records sent over TLS", got)
	}
}
