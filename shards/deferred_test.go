package shards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

type outcomes struct {
	mu   sync.Mutex
	got  []Appended
	errs []error
	n    chan struct{}
}

func newOutcomes() *outcomes { return &outcomes{n: make(chan struct{}, 1<<16)} }

func (o *outcomes) Appended(a Appended, err error) {
	o.mu.Lock()
	o.got = append(o.got, a)
	o.errs = append(o.errs, err)
	o.mu.Unlock()
	o.n <- struct{}{}
}

func (o *outcomes) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-o.n:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %d outcomes", n)
		}
	}
}

// Deferred appends of one key land in one shard in the order they were
// queued, with the sequence numbers their completions report.
func TestAppendDeferredOrderPerKey(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{testStream("s", 4)}})
	defer s.Close()
	o := newOutcomes()
	const n = 500
	for i := range n {
		key := fmt.Sprintf("dev-%d", i%7)
		rec := &Record{Key: key, Data: []byte(fmt.Sprint(i)), Topic: "t", ClientID: key, QoS: 1}
		if err := s.AppendDeferred(context.Background(), "s", rec, AppendOptions{}, o); err != nil {
			t.Fatal(err)
		}
	}
	o.wait(t, n)
	st, _ := s.Stream("s")
	byKey := readAll(t, st)
	for k, recs := range byKey {
		for i := 1; i < len(recs); i++ {
			var a, b int
			fmt.Sscan(string(recs[i-1].Data), &a)
			fmt.Sscan(string(recs[i].Data), &b)
			if b <= a {
				t.Fatalf("key %s: record %d after %d", k, b, a)
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, err := range o.errs {
		if err != nil || o.got[i].ShardID == "" || o.got[i].Seq == 0 {
			t.Fatalf("outcome %d: %+v %v", i, o.got[i], err)
		}
	}
}

// Validation errors come back at once and the completion is never called.
func TestAppendDeferredRefusedAtOnce(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{Streams: []StreamConfig{testStream("s", 1)}})
	defer s.Close()
	o := newOutcomes()
	err := s.AppendDeferred(context.Background(), "s", &Record{Key: "", Data: []byte("x")}, AppendOptions{}, o)
	if !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("empty key: %v, want ErrInvalidKey", err)
	}
	err = s.AppendDeferred(context.Background(), "nope", &Record{Key: "k"}, AppendOptions{}, o)
	if !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("unknown stream: %v, want ErrStreamNotFound", err)
	}
	select {
	case <-o.n:
		t.Fatal("a refused deferred append was also reported")
	case <-time.After(20 * time.Millisecond):
	}
}

// appendRecord writes exactly what the CBOR library would, so records
// decode with the library and stay byte-identical to older ones.
func FuzzAppendRecord(f *testing.F) {
	f.Add("key", []byte("data"), int64(1700000000000), "devices/1/t", "dev-1", byte(1), "", "", false)
	f.Add("k", []byte{}, int64(-1), "", "", byte(0), "a", "b", true)
	f.Add(string(make([]byte, 300)), make([]byte, 70000), int64(1<<40), "x", "y", byte(2), "p", "", true)
	f.Fuzz(func(t *testing.T, key string, data []byte, arrival int64, topic, client string, qos byte, pk, pv string, props bool) {
		r := &Record{Key: key, Data: data, Arrival: arrival, Topic: topic, ClientID: client, QoS: qos}
		if props {
			r.Props = []UserProperty{{Key: pk, Value: pv}, {Key: pv, Value: pk}}
		}
		if len(data) == 0 && arrival%2 == 0 {
			r.Data = nil
		}
		want, err := encMode.Marshal(storedRecord{Key: r.Key, Data: r.Data, Arrival: r.Arrival, Topic: r.Topic,
			ClientID: r.ClientID, QoS: r.QoS, Props: r.Props})
		if err != nil {
			return // not encodable by the library either (invalid UTF-8): nothing to compare
		}
		got := appendRecord([]byte("prefix"), r)
		if !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
			t.Fatalf("appendRecord = %x\nlibrary      = %x", got[6:], want)
		}
	})
}

func BenchmarkAppendDeferred(b *testing.B) {
	c := testStream("s", 4)
	s, err := Open(b.TempDir(), Options{Streams: []StreamConfig{c}, NoRetentionLoop: true,
		Durability: Durability{Fsync: FsyncInterval}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	o := &countOutcomes{done: make(chan struct{}), want: b.N}
	data := make([]byte, 200)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("dev-%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := Record{Key: keys[i%len(keys)], Data: data, Topic: "devices/x/telemetry", ClientID: keys[i%len(keys)], QoS: 1}
		if err := s.AppendDeferred(context.Background(), "s", &rec, AppendOptions{}, o); err != nil {
			b.Fatal(err)
		}
	}
	<-o.done
}

type countOutcomes struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (c *countOutcomes) Appended(Appended, error) {
	c.mu.Lock()
	c.n++
	if c.n == c.want {
		close(c.done)
	}
	c.mu.Unlock()
}
