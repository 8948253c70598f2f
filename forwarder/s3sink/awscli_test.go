package s3sink_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/forwarder/s3sink"
)

// awsCLI runs the AWS CLI (Debian's awscli, botocore: a client no one here
// wrote) against endpoint with s3rver's key and no other configuration.
func awsCLI(t *testing.T, endpoint string, stdout *bytes.Buffer, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("the AWS CLI is not installed (Debian: awscli; or run scripts/install-deps.sh)")
	}
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--endpoint-url", endpoint, "--region", "us-east-1")...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none",
		"AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER"}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
}

// TestAWSCLIReadsArchive follows FORMAT.md's recipe: `aws s3 cp` to
// stdout, `gzip -d`, one JSON envelope per line with the payload in
// base64; `aws s3api head-object` shows the metadata.
func TestAWSCLIReadsArchive(t *testing.T) {
	srv := server(t)
	w := newWriter(t, sinkConfig(t, srv.Endpoint, sharedBucket), s3sink.Options{})
	recs := telemetry(120, 3, 40)
	res, err := w.Put(ctxT(t), s3sink.Object{Stream: "telemetry", Shard: "shardId-000000000001", Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var obj bytes.Buffer
	awsCLI(t, srv.Endpoint, &obj, "s3", "cp", "s3://"+sharedBucket+"/"+res.Key, "-")
	gunzip := exec.Command("gzip", "-d")
	gunzip.Stdin = &obj
	plain, err := gunzip.Output()
	if err != nil {
		t.Fatalf("gzip -d: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("%d lines, want %d", len(lines), len(recs))
	}
	for i, l := range lines {
		var env struct {
			ID, Seq, Key, Data string
		}
		if err := json.Unmarshal([]byte(l), &env); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		data, err := base64.StdEncoding.DecodeString(env.Data)
		if err != nil || !bytes.Equal(data, recs[i].Data) || env.Key != recs[i].Key || env.ID != "gw-1/telemetry/shardId-000000000001/"+env.Seq {
			t.Fatalf("line %d: %s (%v)", i, l, err)
		}
	}
	var head bytes.Buffer
	awsCLI(t, srv.Endpoint, &head, "s3api", "head-object", "--bucket", sharedBucket, "--key", res.Key, "--output", "json")
	var h struct {
		ContentEncoding string
		Metadata        map[string]string
	}
	if err := json.Unmarshal(head.Bytes(), &h); err != nil {
		t.Fatalf("head-object: %v\n%s", err, head.String())
	}
	if h.ContentEncoding != "gzip" || h.Metadata["first-seq"] != "40" || h.Metadata["records"] != "120" {
		t.Errorf("head-object: %s", head.String())
	}
}
