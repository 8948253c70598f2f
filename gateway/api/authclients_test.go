package api

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/kinesalite"
)

// lookTool finds a client nobody here wrote; under CI=true a missing one
// is a failure (scripts/install-deps.sh installs them).
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true (scripts/install-deps.sh)", name)
		}
		t.Logf("%s not installed; set CI=true to make this a failure", name)
		return ""
	}
	return p
}

// TestAuthAWSCLI: botocore signs with the right key, the wrong secret and
// an unknown key; the CLI reports the Kinesis exception names.
func TestAuthAWSCLI(t *testing.T) {
	bin := lookTool(t, "aws")
	if bin == "" {
		return
	}
	e := newAuthEnv(t, Config{})
	home := t.TempDir()
	cli := func(id, secret string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args = append(append([]string{"kinesis"}, args...), "--endpoint-url", e.hs.URL, "--output", "json")
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
			"AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_DEFAULT_REGION=eu-west-1",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none",
			"AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := cli("AKIDREADER", testSecrets["AKIDREADER"], "list-streams")
	var ls struct{ StreamNames []string }
	if err != nil || json.Unmarshal([]byte(out), &ls) != nil || strings.Join(ls.StreamNames, ",") != "telemetry" {
		t.Fatalf("reader list-streams: %v\n%s", err, out)
	}
	if out, err := cli("AKIDWRITER", testSecrets["AKIDWRITER"], "put-record", "--stream-name", "telemetry", "--partition-key", "k", "--data", "aGk="); err != nil {
		t.Fatalf("writer put-record: %v\n%s", err, out)
	}
	for _, c := range []struct {
		id, secret, want string
		args             []string
	}{
		{"AKIDWRITER", "wrong-secret-0123456789", errInvalidSignature, []string{"put-record", "--stream-name", "telemetry", "--partition-key", "k", "--data", "aGk="}},
		{"AKIDNOBODY", "wrong-secret-0123456789", errUnrecognized, []string{"list-streams"}},
		{"AKIDREADER", testSecrets["AKIDREADER"], errAccessDenied, []string{"delete-stream", "--stream-name", "telemetry"}},
	} {
		out, err := cli(c.id, c.secret, c.args...)
		if err == nil || !strings.Contains(out, "("+c.want+")") {
			t.Errorf("%s %s: %v, want (%s):\n%s", c.id, c.args[0], err, c.want, out)
		}
	}
}

// TestAuthCurl: curl's own SigV4 signer, with the real Host and a
// foreign one.
func TestAuthCurl(t *testing.T) {
	bin := lookTool(t, "curl")
	if bin == "" {
		return
	}
	e := newAuthEnv(t, Config{})
	curl := func(host string, user string) (string, error) {
		args := []string{"-sS", "--aws-sigv4", "aws:amz:us-east-1:kinesis", "--user", user,
			"-H", "Content-Type: application/x-amz-json-1.1", "-H", "X-Amz-Target: Kinesis_20131202.ListStreams",
			"-d", "{}", "-w", "\n%{http_code}", e.hs.URL + "/"}
		if host != "" {
			args = append(args, "-H", "Host: "+host)
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := curl("", "AKIDREADER:"+testSecrets["AKIDREADER"]); err != nil || !strings.HasSuffix(out, "\n200") || !strings.Contains(out, `"telemetry"`) {
		t.Fatalf("curl signed: %v\n%s", err, out)
	}
	if out, _ := curl("", "AKIDREADER:wrong-secret-0123456789"); !strings.HasSuffix(out, "\n400") || !strings.Contains(out, errInvalidSignature) {
		t.Errorf("curl wrong secret:\n%s", out)
	}
	if out, _ := curl("evil.example", "AKIDREADER:"+testSecrets["AKIDREADER"]); !strings.HasSuffix(out, "\n403") || !strings.Contains(out, "api.allowed_hosts") {
		t.Errorf("curl foreign Host:\n%s", out)
	}
}

// jsSDKScript calls the gateway with @aws-sdk/client-kinesis over
// HTTP/1.1 (NodeHttpHandler; the SDK's default would be HTTP/2) and
// prints each outcome: "ok <names>" or the exception name.
const jsSDKScript = `
const { KinesisClient, ListStreamsCommand, PutRecordCommand } = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');
const [endpoint, calls] = [process.argv[1], JSON.parse(process.argv[2])];
(async () => {
  const out = [];
  for (const c of calls) {
    const client = new KinesisClient({ endpoint, region: 'eu-west-1', maxAttempts: 1,
      credentials: { accessKeyId: c.id, secretAccessKey: c.secret }, requestHandler: new NodeHttpHandler() });
    try {
      if (c.op === 'put') {
        await client.send(new PutRecordCommand({ StreamName: c.stream, PartitionKey: 'k', Data: Buffer.from('js') }));
        out.push('ok');
      } else {
        const r = await client.send(new ListStreamsCommand({}));
        out.push('ok ' + r.StreamNames.join(','));
      }
    } catch (e) { out.push(e.name); }
  }
  process.stdout.write(JSON.stringify(out));
})();
`

func TestAuthJSSDK(t *testing.T) {
	if lookTool(t, "node") == "" {
		return
	}
	modules, err := kinesalite.NodeModules()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(modules + "/@aws-sdk/client-kinesis"); err != nil {
		t.Fatalf("@aws-sdk/client-kinesis is not installed in %s (bash scripts/install-deps.sh): %v", modules, err)
	}
	e := newAuthEnv(t, Config{})
	type call struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Op     string `json:"op"`
		Stream string `json:"stream"`
	}
	calls := []call{
		{"AKIDREADER", testSecrets["AKIDREADER"], "list", ""},
		{"AKIDWRITER", testSecrets["AKIDWRITER"], "put", "telemetry"},
		{"AKIDWRITER", "wrong-secret-0123456789", "put", "telemetry"},
		{"AKIDNOBODY", "wrong-secret-0123456789", "list", ""},
		{"AKIDWRITER", testSecrets["AKIDWRITER"], "put", "other"},
	}
	arg, _ := json.Marshal(calls)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e", jsSDKScript, e.hs.URL, string(arg))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	want := []string{"ok telemetry", "ok", errInvalidSignature, errUnrecognized, errAccessDenied}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("JS SDK outcomes %q, want %q", got, want)
	}
}
