package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-gateway/weir/shards"
)

// TestDumpEncryptedStream: `weir dump` reads an encrypted stream with
// --keys-dir, and without it says what is missing.
func TestDumpEncryptedStream(t *testing.T) {
	dir, keys := t.TempDir(), t.TempDir()
	key := make([]byte, shards.KeySize)
	for i := range key {
		key[i] = byte(i*13 + 1)
	}
	if err := os.WriteFile(filepath.Join(keys, "site-key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := shards.Open(dir, shards.Options{KeysDir: keys, NoRetentionLoop: true,
		Streams: []shards.StreamConfig{shards.StreamConfig{Name: "telemetry", Shards: 1}.WithDefaults()}})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stream("telemetry")
	if err := st.StartEncryption("site-key"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "telemetry", &shards.Record{Key: "dev-1", Data: []byte("secret-reading")}, shards.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	out, errs, code := weir(t, "dump", "--data-dir", dir, "--stream", "telemetry")
	if code != 1 || !strings.Contains(errs, "--keys-dir") || strings.Contains(out, "dev-1") {
		t.Fatalf("dump without keys: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	out, errs, code = weir(t, "dump", "--data-dir", dir, "--keys-dir", keys, "--stream", "telemetry")
	if code != 0 || !strings.Contains(out, `"key":"dev-1"`) {
		t.Fatalf("dump with keys: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
