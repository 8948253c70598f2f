package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// TestAWSCLI drives the gateway with a second Kinesis client nobody here
// wrote: the AWS CLI (botocore). The test command installs it (Debian
// package awscli); under CI=true a missing CLI is a failure.
func TestAWSCLI(t *testing.T) {
	bin, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the aws CLI is required under CI=true (apt-get install -y awscli)")
		}
		t.Log("aws CLI not installed; set CI=true to make this a failure")
		return
	}
	e := newEnv(t, envOptions{})
	home := t.TempDir()
	ver, _ := exec.Command(bin, "--version").CombinedOutput()
	v2 := strings.HasPrefix(string(ver), "aws-cli/2")

	aws := func(out any, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args = append(append([]string{"kinesis"}, args...), "--endpoint-url", e.hs.URL, "--output", "json")
		if v2 {
			// CLI v2 reads blob arguments as base64 unless told otherwise.
			args = append(args, "--cli-binary-format", "raw-in-base64-out", "--no-cli-pager")
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
			"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=local",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none",
			"AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1"}
		b, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		if out != nil && len(strings.TrimSpace(string(b))) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("aws %s: %v: %s", args[1], err, b)
			}
		}
	}

	aws(nil, "create-stream", "--stream-name", "cli", "--shard-count", "2")
	var ls struct{ StreamNames []string }
	aws(&ls, "list-streams")
	if len(ls.StreamNames) != 1 || ls.StreamNames[0] != "cli" {
		t.Fatalf("list-streams %+v", ls)
	}
	var put struct{ ShardId, SequenceNumber string }
	aws(&put, "put-record", "--stream-name", "cli", "--partition-key", "device-7", "--data", "hello from the cli")
	if put.ShardId == "" || put.SequenceNumber != shards.FormatSeq(put.ShardId, 1) {
		t.Fatalf("put-record %+v", put)
	}
	var it struct{ ShardIterator string }
	aws(&it, "get-shard-iterator", "--stream-name", "cli", "--shard-id", put.ShardId, "--shard-iterator-type", "TRIM_HORIZON")
	var gr struct {
		Records []struct {
			Data, PartitionKey, SequenceNumber string
			ApproximateArrivalTimestamp        any
		}
		NextShardIterator  string
		MillisBehindLatest int64
	}
	aws(&gr, "get-records", "--shard-iterator", it.ShardIterator)
	if len(gr.Records) != 1 || gr.NextShardIterator == "" {
		t.Fatalf("get-records %+v", gr)
	}
	data, _ := base64.StdEncoding.DecodeString(gr.Records[0].Data)
	if string(data) != "hello from the cli" || gr.Records[0].PartitionKey != "device-7" || gr.Records[0].ApproximateArrivalTimestamp == nil {
		t.Fatalf("record %+v (data %q)", gr.Records[0], data)
	}
	var shards struct{ Shards []struct{ ShardId string } }
	aws(&shards, "list-shards", "--stream-name", "cli")
	if len(shards.Shards) != 2 {
		t.Fatalf("list-shards %+v", shards)
	}
	var sum struct {
		StreamDescriptionSummary struct {
			StreamName     string
			OpenShardCount int
			StreamStatus   string
		}
	}
	aws(&sum, "describe-stream-summary", "--stream-name", "cli")
	if s := sum.StreamDescriptionSummary; s.StreamName != "cli" || s.OpenShardCount != 2 || s.StreamStatus != "ACTIVE" {
		t.Fatalf("describe-stream-summary %+v", s)
	}
}
