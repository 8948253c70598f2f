package verify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestClientCredentials: verify signs with the standard chain (the
// environment's keys, a profile), and with dummy keys when it is empty.
func TestClientCredentials(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("[lab]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ResourceNotFoundException","message":"none"}`))
	}))
	defer srv.Close()
	cases := []struct {
		name, envKey, profile, want string
	}{
		{"empty chain", "", "", "Credential=firmware-sim/"},
		{"environment", "AKIDENV", "", "Credential=AKIDENV/"},
		{"profile", "", "lab", "Credential=AKIDPROFILE/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"} {
				t.Setenv(k, "")
			}
			t.Setenv("AWS_ACCESS_KEY_ID", tc.envKey)
			t.Setenv("AWS_SECRET_ACCESS_KEY", tc.envKey)
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
			c, err := NewClient(context.Background(), ClientOptions{Endpoint: srv.URL, Profile: tc.profile})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("s")})
			if err == nil {
				t.Fatal("the server's error was not returned")
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(auth, tc.want) || !strings.Contains(auth, "/us-east-1/kinesis/") {
				t.Fatalf("Authorization %q, want %q in us-east-1", auth, tc.want)
			}
		})
	}
}
