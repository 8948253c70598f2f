package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTripAndFormat(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	ack := time.Date(2025, 11, 25, 21, 4, 5, 123456789, time.FixedZone("x", 3600))
	entries := []Entry{
		{Device: "dev-00001", Seq: 17, Key: "dev-00001", Ack: ack},
		{Device: `we"ird\dev` + "\x01é", Seq: 1, Key: "k", Ack: ack, Probe: "unrouted"},
	}
	for _, e := range entries {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() != 0 {
		t.Fatal("writes should be buffered until Flush")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(buf.String(), "\n", 2)[0]
	want := `{"device":"dev-00001","seq":17,"key":"dev-00001","ack":"2025-11-25T20:04:05.123456789Z"}`
	if first != want {
		t.Fatalf("line = %s\nwant  %s", first, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("invalid JSON line %q", line)
		}
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Device != entries[1].Device || got[1].Probe != "unrouted" || !got[0].Ack.Equal(ack) {
		t.Fatalf("read back %+v", got)
	}
	if w.Lines() != 2 {
		t.Fatalf("lines = %d", w.Lines())
	}
	if err := w.Append(entries[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestReadBadLine(t *testing.T) {
	in := `{"device":"a","seq":1,"key":"a","ack":"2025-11-25T20:04:05Z"}` + "\n\n" + `{"device":"a","seq":2,"ke`
	_, err := Read(strings.NewReader(in))
	if !errors.Is(err, ErrBadLine) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestStickyError(t *testing.T) {
	w := NewWriter(failWriter{})
	_ = w.Append(Entry{Device: "a", Seq: 1})
	if err := w.Flush(); err == nil {
		t.Fatal("flush should fail")
	}
	if err := w.Append(Entry{Device: "a", Seq: 2}); err == nil {
		t.Fatal("error should be sticky")
	}
}

func TestConcurrentAppend(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				_ = w.Append(Entry{Device: string(rune('a' + g)), Seq: uint64(i + 1), Key: "k", Ack: time.Now()})
			}
		}()
	}
	wg.Wait()
	_ = w.Flush()
	got, err := Read(&buf)
	if err != nil || len(got) != 4000 {
		t.Fatalf("read %d entries, err %v", len(got), err)
	}
}
