package gateway

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/fsutil"
)

// iteratorKeyMode keeps the key private: whoever reads it can forge shard
// iterators.
const iteratorKeyMode = 0o600

// iteratorKey returns the key that signs Kinesis shard iterators, created
// once per data directory so iterators stay valid across restarts.
func iteratorKey(dataDir string, log zerolog.Logger) ([]byte, error) {
	path := filepath.Join(dataDir, "api.key")
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, tightenKeyMode(path, log)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	// Durable before use: a key lost to a power cut would invalidate every
	// iterator handed out before it.
	if err := fsutil.WriteFile(path, b, iteratorKeyMode); err != nil {
		return nil, fmt.Errorf("write iterator key: %w", err)
	}
	return b, nil
}

// tightenKeyMode repairs a key that an older weir left readable by others
// (it created the file 0644 and chmodded it afterwards, unsynced, so a
// power cut could undo the chmod). The fsync makes the new mode durable.
func tightenKeyMode(path string, log zerolog.Logger) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().Perm()&^iteratorKeyMode == 0 {
		return nil
	}
	if err := f.Chmod(iteratorKeyMode); err != nil {
		return fmt.Errorf("tighten iterator key mode: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tighten iterator key mode: %w", err)
	}
	log.Warn().Str("path", path).Str("was", st.Mode().Perm().String()).Msg("iterator key was readable by others; its mode is now 0600")
	return nil
}
