package forwarder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/rs/zerolog"
)

// TestSDKLogGoesThroughZerolog reproduces the SDK's "falling back to
// IMDSv1" warning (a metadata endpoint that refuses the IMDSv2 token, as
// some container hosts do) and checks it arrives as a JSON line of the
// forwarder's logger, not as the SDK's raw "SDK ... WARN" stderr line.
func TestSDKLogGoesThroughZerolog(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer imds.Close()
	empty := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")

	// The SDK logs on the calling goroutine: a plain buffer will do.
	var out bytes.Buffer
	cfg := testCfg()
	cfg.Region = "eu-west-1"
	f, err := New(cfg, newMemSource(), newMemCkpt(), Options{Logger: zerolog.New(&out).With().Str("part", "forwarder").Logger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.sink.(*kinesisSink).client.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("cloud"),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}})
	if err == nil {
		t.Fatal("PutRecords without credentials succeeded")
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		if line["source"] == "aws-sdk" && strings.Contains(line["message"].(string), "IMDSv1") {
			found = true
			if line["level"] != "warn" || line["part"] != "forwarder" {
				t.Errorf("SDK line: %v", line)
			}
		}
	}
	if !found {
		t.Fatalf("the SDK's IMDS warning did not reach zerolog; log:\n%s", out.String())
	}
}
