package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A new key is private from its creation; one an older weir left 0644 is
// made private on the next start, keeps its bytes, and the fix is logged.
func TestIteratorKeyMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.key")
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	key, err := iteratorKey(dir, log)
	if err != nil || len(key) != 32 {
		t.Fatalf("new key: %d bytes, %v", len(key), err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new key: %v, %v; want mode 0600", st, err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a new key logged %q", logs.String())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := iteratorKey(dir, log)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("reopened key differs (%v)", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("old 0644 key: %v, %v; want mode 0600", st, err)
	}
	if !strings.Contains(logs.String(), "readable by others") {
		t.Fatalf("tightening was not logged: %q", logs.String())
	}
}
