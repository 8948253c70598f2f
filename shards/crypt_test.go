package shards

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeKey writes a fresh random-looking key for name under dir and
// returns its bytes.
func writeKey(t testing.TB, dir, name string, seed byte) []byte {
	t.Helper()
	key := bytes.Repeat([]byte{seed}, KeySize)
	for i := range key {
		key[i] ^= byte(i * 7)
	}
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// segmentsContain reports which of needles occur in any file under dir.
func segmentsContain(t *testing.T, dir string, needles []string) []string {
	t.Helper()
	var found []string
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if !seen[n] && bytes.Contains(b, []byte(n)) {
				seen[n] = true
				found = append(found, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func readStream(t *testing.T, st *Stream) []Record {
	t.Helper()
	var out []Record
	for _, info := range st.Shards() {
		sh, err := st.Shard(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := sh.Read(sh.TrimHorizon(), 10000, 1<<24)
		if err != nil {
			t.Fatalf("read %s: %v", info.ID, err)
		}
		out = append(out, recs...)
	}
	return out
}

func encStore(t *testing.T) (data, keys string, s *Store) {
	t.Helper()
	data, keys = t.TempDir(), t.TempDir()
	s = openStore(t, data, Options{KeysDir: keys, Streams: []StreamConfig{testStream("s", 2)}})
	return data, keys, s
}

func TestEncryptedSegmentsHoldNoPlaintext(t *testing.T) {
	data, keys, s := encStore(t)
	writeKey(t, keys, "alias/edge", 1)
	st, _ := s.Stream("s")
	before := "plain-before-start-0001"
	put(t, s, "s", "dev-0", before)
	if err := st.StartEncryption("arn:aws:kms:eu-west-1:123456789012:alias/edge"); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for i := range 200 {
		d := fmt.Sprintf("secret-payload-%04d-temperature=21.5", i)
		secrets = append(secrets, d)
		key := fmt.Sprintf("device-key-%03d", i%10)
		if _, err := s.Append(context.Background(), "s", &Record{Key: key, Data: []byte(d), Topic: "site/secret-topic", ClientID: "client-secret"}, AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	recs := make([]*Record, 50)
	for i := range recs {
		d := fmt.Sprintf("secret-batch-%04d", i)
		secrets = append(secrets, d)
		recs[i] = &Record{Key: fmt.Sprintf("k%d", i), Data: []byte(d)}
	}
	if _, errs := s.AppendBatch(context.Background(), "s", recs, nil); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	s.Close()

	leaked := segmentsContain(t, filepath.Join(data, "streams"), append(secrets, "device-key-00", "secret-topic", "client-secret"))
	if len(leaked) > 0 {
		t.Fatalf("plain text of encrypted records found in segments: %q", leaked)
	}
	// Kinesis encrypts only records put after StartStreamEncryption; so
	// do we, and the record from before is still there in clear.
	if got := segmentsContain(t, filepath.Join(data, "streams"), []string{before}); len(got) != 1 {
		t.Fatalf("record from before the start should stay as written")
	}

	s = openStore(t, data, Options{KeysDir: keys})
	defer s.Close()
	st, _ = s.Stream("s")
	if got := st.Encryption(); got != "arn:aws:kms:eu-west-1:123456789012:alias/edge" {
		t.Fatalf("encryption after restart: %q", got)
	}
	all := readStream(t, st)
	want := map[string]bool{before: true}
	for _, d := range secrets {
		want[d] = true
	}
	for _, r := range all {
		if !want[string(r.Data)] {
			t.Fatalf("unexpected record %q", r.Data)
		}
		delete(want, string(r.Data))
		if strings.HasPrefix(string(r.Data), "secret-payload") && (r.Topic != "site/secret-topic" || r.ClientID != "client-secret" || r.Arrival == 0) {
			t.Fatalf("record fields lost: %+v", r)
		}
	}
	if len(want) > 0 {
		t.Fatalf("%d records not read back", len(want))
	}
}

func TestEncryptionRotationAndStop(t *testing.T) {
	data, keys, s := encStore(t)
	writeKey(t, keys, "k1", 1)
	writeKey(t, keys, "k2", 2)
	st, _ := s.Stream("s")
	steps := []struct {
		do   func() error
		data string
	}{
		{func() error { return st.StartEncryption("k1") }, "under-k1"},
		{func() error { return st.StartEncryption("k2") }, "under-k2"},
		{func() error { return st.StopEncryption("k2") }, "plain-after-stop"},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		put(t, s, "s", "one-key", step.data)
	}
	if st.Encryption() != "" {
		t.Fatalf("still encrypted after stop: %q", st.Encryption())
	}
	s.Close()
	if got := segmentsContain(t, filepath.Join(data, "streams"), []string{"under-k1", "under-k2", "plain-after-stop"}); len(got) != 1 || got[0] != "plain-after-stop" {
		t.Fatalf("plain text in segments: %q, want only the record after stop", got)
	}
	s = openStore(t, data, Options{KeysDir: keys})
	defer s.Close()
	st, _ = s.Stream("s")
	var got []string
	for _, r := range readStream(t, st) {
		got = append(got, string(r.Data))
	}
	if strings.Join(got, ",") != "under-k1,under-k2,plain-after-stop" {
		t.Fatalf("read back %q", got)
	}
}

func TestEncryptionWrongKeyIsClearError(t *testing.T) {
	data, keys, s := encStore(t)
	writeKey(t, keys, "k1", 1)
	st, _ := s.Stream("s")
	put(t, s, "s", "x", "before")
	if err := st.StartEncryption("k1"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "s", "x", "secret")
	s.Close()

	writeKey(t, keys, "k1", 9) // someone replaced the key file
	s = openStore(t, data, Options{KeysDir: keys})
	defer s.Close()
	st, _ = s.Stream("s")
	a, err := s.Append(context.Background(), "s", &Record{Key: "x", Data: []byte("new")}, AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := st.Shard(a.ShardID)
	// The first read hands over the plain record before the bad one.
	recs, _, err := sh.Read(1, 10, 1<<20)
	if err != nil || len(recs) != 1 || string(recs[0].Data) != "before" {
		t.Fatalf("first read: %v %v", recs, err)
	}
	_, _, err = sh.Read(2, 10, 1<<20)
	var ke *KeyError
	if !errors.Is(err, ErrKeyMismatch) || !errors.As(err, &ke) || ke.KeyID != "k1" {
		t.Fatalf("read with a replaced key: %v", err)
	}
	if !strings.Contains(err.Error(), "record 2") {
		t.Fatalf("error does not say which record: %v", err)
	}
}

func TestEncryptionMissingKey(t *testing.T) {
	data, keys, s := encStore(t)
	key := writeKey(t, keys, "alias/gone", 1)
	st, _ := s.Stream("s")
	if err := st.StartEncryption("alias/gone"); err != nil {
		t.Fatal(err)
	}
	a := put(t, s, "s", "x", "secret")
	s.Close()

	path := filepath.Join(keys, "alias", "gone")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, data, Options{KeysDir: keys}) // opens: other streams and plain records stay usable
	defer s.Close()
	st, _ = s.Stream("s")
	sh, _ := st.Shard(a.ShardID)
	_, _, err := sh.Read(a.Seq, 1, 1<<20)
	var ke *KeyError
	if !errors.Is(err, ErrKeyNotFound) || !errors.As(err, &ke) || ke.Path != path {
		t.Fatalf("read without the key: %v", err)
	}
	// Appends fail rather than store plain text.
	if _, err := s.Append(context.Background(), "s", &Record{Key: "x", Data: []byte("must-not-be-stored")}, AppendOptions{}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("append without the key: %v", err)
	}
	if got := segmentsContain(t, filepath.Join(data, "streams"), []string{"must-not-be-stored"}); len(got) > 0 {
		t.Fatal("a record was stored in plain text while the key was missing")
	}
	// Arrival times stay readable (retention, AT_TIMESTAMP).
	if _, ok := sh.ArrivalOf(a.Seq); !ok {
		t.Fatal("arrival time of an encrypted record needs the key")
	}
	// The key comes back: no restart needed.
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	recs, _, err := sh.Read(a.Seq, 1, 1<<20)
	if err != nil || string(recs[0].Data) != "secret" {
		t.Fatalf("read after restoring the key: %v %v", recs, err)
	}
	put(t, s, "s", "x", "appended-again")
}

func TestStartStopEncryptionErrors(t *testing.T) {
	data := t.TempDir()
	s := openStore(t, data, Options{Streams: []StreamConfig{testStream("s", 1)}})
	st, _ := s.Stream("s")
	if err := st.StartEncryption("k1"); !errors.Is(err, ErrEncryptionOff) {
		t.Fatalf("without keys_dir: %v", err)
	}
	s.Close()

	_, keys, s := encStore(t)
	defer s.Close()
	st, _ = s.Stream("s")
	writeKey(t, keys, "k1", 1)
	writeKey(t, keys, "open", 2)
	if err := os.Chmod(filepath.Join(keys, "open"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(keys, "short"), []byte("too short"), 0o600)
	os.Mkdir(filepath.Join(keys, "adir"), 0o700)
	for _, c := range []struct {
		id   string
		want error
	}{
		{"missing", ErrKeyNotFound},
		{"open", ErrKeyInvalid},
		{"short", ErrKeyInvalid},
		{"adir", ErrKeyInvalid},
		{"../etc/passwd", ErrInvalidArgument},
		{"", ErrInvalidArgument},
		{"arn:aws:s3:::bucket", ErrInvalidArgument},
	} {
		if err := st.StartEncryption(c.id); !errors.Is(err, c.want) {
			t.Errorf("StartEncryption(%q) = %v, want %v", c.id, err, c.want)
		}
	}
	if st.Encryption() != "" {
		t.Fatal("a failed start changed the stream")
	}
	if err := st.StopEncryption("k1"); err != nil {
		t.Fatalf("stop on a plain stream: %v", err)
	}
	if err := st.StartEncryption("k1"); err != nil {
		t.Fatal(err)
	}
	if err := st.StopEncryption("other"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("stop with another key: %v", err)
	}
	if st.Encryption() != "k1" {
		t.Fatal("a failed stop changed the stream")
	}
}

func TestKeysDirWorldWritableRefused(t *testing.T) {
	keys := t.TempDir()
	if err := os.Chmod(keys, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.TempDir(), Options{KeysDir: keys, NoRetentionLoop: true}); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("world-writable keys_dir: %v", err)
	}
	if _, err := Open(t.TempDir(), Options{KeysDir: filepath.Join(keys, "nope"), NoRetentionLoop: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing keys_dir: %v", err)
	}
}

func TestKeyName(t *testing.T) {
	for _, c := range []struct{ id, want string }{
		{"1234abcd-12ab-34cd-56ef-1234567890ab", "1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"alias/aws/kinesis", "alias/aws/kinesis"},
		{"arn:aws-cn:kms:cn-north-1:123456789012:alias/edge", "alias/edge"},
		{"local_key-2", "local_key-2"},
	} {
		if got, err := KeyName(c.id); err != nil || got != c.want {
			t.Errorf("KeyName(%q) = %q, %v; want %q", c.id, got, err, c.want)
		}
	}
	for _, id := range []string{"", ".", "..", "../x", "a/../b", "a//b", "/abs", "a/", "a b", "a.key",
		"arn:aws:kms:r:a:other/x", "arn:aws:iam::123:role/x", "arn:aws:kms", strings.Repeat("a", 256)} {
		if _, err := KeyName(id); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("KeyName(%q) = %v, want ErrInvalidArgument", id, err)
		}
	}
}

func TestKeyFileFormats(t *testing.T) {
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(i * 37)
	}
	for name, content := range map[string][]byte{
		"raw":       raw,
		"hex":       []byte(hex.EncodeToString(raw) + "\n"),
		"base64":    []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"raw-white": append([]byte("\n"), raw[:31]...), // 32 bytes: raw, not trimmed
	} {
		k, err := parseKey(content)
		if err != nil || len(k) != KeySize {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, content := range map[string][]byte{
		"31 raw":    raw[:31],
		"33 raw":    append(raw, 0),
		"short hex": []byte(hex.EncodeToString(raw[:16])), // 32 bytes of text
		"password":  []byte("correct horse battery staple!!!!"),
		"bad hex":   []byte(strings.Repeat("zz", 32)),
		"b64 of 16": []byte(base64.StdEncoding.EncodeToString(raw[:16])),
	} {
		if _, err := parseKey(content); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// Group-readable is fine (a key group); anything for others is not.
	keys := t.TempDir()
	k := &keyring{dir: keys, keys: map[string]*dataKey{}}
	writeKey(t, keys, "g", 1)
	for mode, ok := range map[os.FileMode]bool{0o600: true, 0o400: true, 0o640: true, 0o660: false, 0o604: false, 0o644: false} {
		os.Chmod(filepath.Join(keys, "g"), mode)
		_, err := k.load("g")
		if (err == nil) != ok {
			t.Errorf("mode %04o: %v", mode, err)
		}
		if err != nil && !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: error gives no remedy: %v", mode, err)
		}
	}
}

// testKeyring has one key "k" in memory.
func testKeyring(t testing.TB) (*keyring, *dataKey) {
	keys := t.TempDir()
	writeKey(t, keys, "k", 3)
	k, err := newKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := k.get("k")
	if err != nil {
		t.Fatal(err)
	}
	return k, dk
}

func TestEnvelopeTamperDetected(t *testing.T) {
	k, dk := testKeyring(t)
	plain := []byte("the record")
	env := k.seal(dk, "s", 1234, plain)
	if got, err := k.open("s", env); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: %q %v", got, err)
	}
	if e, _ := parseEnvelope(env); e.arrival != 1234 || string(e.name) != "k" {
		t.Fatalf("header: %+v", e)
	}
	if _, err := k.open("other-stream", env); !errors.Is(err, ErrTampered) {
		t.Fatalf("record moved to another stream: %v", err)
	}
	nameEnd := 3 + len(dk.name)
	for i := range env {
		bad := bytes.Clone(env)
		bad[i] ^= 0x01
		_, err := k.open("s", bad)
		switch {
		case err == nil:
			t.Fatalf("flipping byte %d went unnoticed", i)
		case i >= nameEnd && i < nameEnd+checkSize:
			if !errors.Is(err, ErrKeyMismatch) {
				t.Errorf("byte %d (key check): %v", i, err)
			}
		case i >= 3 && i < nameEnd:
			if !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("byte %d (key name): %v", i, err)
			}
		default:
			if !errors.Is(err, ErrTampered) {
				t.Errorf("byte %d: %v", i, err)
			}
		}
	}
	for n := range env {
		if _, err := k.open("s", env[:n]); !errors.Is(err, ErrTampered) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
}

func TestNoncesNeverRepeat(t *testing.T) {
	var s nonceSource
	if err := s.init(); err != nil {
		t.Fatal(err)
	}
	seen := map[[nonceSize]byte]bool{}
	take := func() {
		var n [nonceSize]byte
		s.put(n[:])
		if seen[n] {
			t.Fatalf("nonce %x repeated", n)
		}
		seen[n] = true
	}
	for range 1000 {
		take()
	}
	s.n.Store(1<<32 - 2) // across the low counter's wrap the base moves on
	for range 4 {
		take()
	}
}

func TestEncryptedStreamAcrossReshardAndTime(t *testing.T) {
	clk := newFakeClock()
	data, keys := t.TempDir(), t.TempDir()
	writeKey(t, keys, "k", 1)
	s := openStore(t, data, Options{KeysDir: keys, Clock: clk.Now, Streams: []StreamConfig{testStream("s", 1)}})
	defer s.Close()
	st, _ := s.Stream("s")
	if err := st.StartEncryption("k"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "s", "a", "before-split")
	clk.Add(time.Minute)
	mid := clk.Now()
	put(t, s, "s", "a", "after-minute")
	parent := st.Shards()[0]
	if err := st.Split(parent.ID, EvenRanges(2)[1][0]); err != nil {
		t.Fatal(err)
	}
	put(t, s, "s", "a", "in-child")
	put(t, s, "s", "zz", "in-child-2")
	if got := segmentsContain(t, filepath.Join(data, "streams"), []string{"before-split", "after-minute", "in-child"}); len(got) > 0 {
		t.Fatalf("plain text in segments: %q", got)
	}
	sh, _ := st.Shard(parent.ID)
	if seq := sh.SeqAtTime(mid); seq != 2 {
		t.Fatalf("SeqAtTime on encrypted records = %d, want 2", seq)
	}
	if n := len(readStream(t, st)); n != 4 {
		t.Fatalf("read %d records, want 4", n)
	}
}

// FuzzOpenEnvelope feeds arbitrary stored bytes to the envelope decoder:
// it must return an error or the plain text, never panic, and never touch
// a file outside keys_dir.
func FuzzOpenEnvelope(f *testing.F) {
	k, dk := testKeyring(f)
	f.Add(k.seal(dk, "s", 1, []byte("seed")))
	f.Add([]byte{envMagic, envVersion, 2, '.', '.'})
	f.Add([]byte{envMagic, envVersion, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// The wal's tag of an envelope is the arrival parseEnvelope finds.
		if e, err := parseEnvelope(b); err == nil {
			ms, ok := arrivalTag(b)
			if ok != (e.arrival >= 0) || ok && int64(ms) != e.arrival {
				t.Fatalf("arrivalTag = %d, %v; envelope says %d", ms, ok, e.arrival)
			}
		}
		plain, err := k.open("s", b)
		if err == nil && !bytes.Equal(plain, []byte("seed")) {
			t.Fatalf("forged envelope opened: %q", plain)
		}
		if err != nil && !errors.Is(err, ErrTampered) && !errors.Is(err, ErrKeyNotFound) &&
			!errors.Is(err, ErrKeyInvalid) && !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}
