package wal

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDataEnd: the prefix DataEnd reports holds every record and no
// preallocated zeros; a copy of just that prefix opens as the same log;
// a half-written frame after it makes the segment not clean.
func TestDataEnd(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := l.Append(context.Background(), []byte{byte(i), 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	seg := filepath.Join(dir, segmentName(1))
	f, err := os.Open(seg)
	if err != nil {
		t.Fatal(err)
	}
	end, clean, err := DataEnd(f)
	f.Close()
	if want := int64(segHeaderSize) + 10*frameSize(4); err != nil || end != want || !clean {
		t.Fatalf("DataEnd = %d, %v, %v; want %d, clean", end, clean, err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	copyDir := t.TempDir()
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copyDir, segmentName(1)), data[:end], 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(copyDir, Options{Name: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if c.LastIndex() != 10 {
		t.Fatalf("the copied prefix holds records up to %d, want 10", c.LastIndex())
	}
	if got, err := c.Read(10); err != nil || got[0] != 9 {
		t.Fatalf("record 10 of the copy: %v, %v", got, err)
	}
	c.Close()

	// A frame whose header is written but whose payload is not.
	torn := append(append([]byte(nil), data[:end]...), appendFrame(nil, 11, []byte("payload"))[:frameHeaderSize+2]...)
	torn = append(torn, make([]byte, 64)...)
	tornPath := filepath.Join(t.TempDir(), segmentName(1))
	if err := os.WriteFile(tornPath, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := os.Open(tornPath)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	if e, clean, err := DataEnd(tf); err != nil || e != end || clean {
		t.Fatalf("torn tail: DataEnd = %d, %v, %v; want %d, not clean", e, clean, err, end)
	}
}
