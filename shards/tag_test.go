package shards

import (
	"testing"
)

// FuzzArrivalTag holds arrivalTag to the CBOR decoder: whenever it finds
// a tag, decodeRecord decodes the same payload to the same arrival time.
func FuzzArrivalTag(f *testing.F) {
	for _, r := range []Record{
		{Key: "k", Data: []byte("hello"), Arrival: 1700000000000},
		{Key: string(make([]byte, 300)), Data: make([]byte, 70000), Arrival: 5, Topic: "t"},
		{Key: "x", Arrival: 0},
	} {
		b, err := encodeRecord(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tag, ok := arrivalTag(b)
		if !ok {
			return
		}
		r, err := decodeRecord(1, b)
		if err != nil {
			return // a prefix that parses, in bytes that are no record: the wal never stores those
		}
		if uint64(r.Arrival) != tag {
			t.Fatalf("arrivalTag = %d, record says %d", tag, r.Arrival)
		}
	})
}

func TestArrivalTagOfEncodedRecords(t *testing.T) {
	for _, arrival := range []int64{1, 23, 24, 255, 256, 65536, 1 << 40, 1700000000123} {
		for _, size := range []int{0, 23, 24, 300, 70000} {
			r := Record{Key: "key", Data: make([]byte, size), Arrival: arrival, Topic: "a/b"}
			b, err := encodeRecord(&r)
			if err != nil {
				t.Fatal(err)
			}
			if tag, ok := arrivalTag(b); !ok || tag != uint64(arrival) {
				t.Fatalf("arrival %d, data %d bytes: tag %d, %v", arrival, size, tag, ok)
			}
		}
	}
}

// An encrypted stream's segments must be found by time without the key:
// the tag of an envelope is its clear arrival.
func TestArrivalTagOfEnvelope(t *testing.T) {
	k, dk := testKeyring(t)
	for _, arrival := range []int64{0, 1, 1700000000123, 1<<63 - 1} {
		b := k.seal(dk, "s", arrival, []byte("secret"))
		if tag, ok := arrivalTag(b); !ok || tag != uint64(arrival) {
			t.Fatalf("arrivalTag(envelope of %d) = %d, %v", arrival, tag, ok)
		}
	}
	if _, ok := arrivalTag([]byte{envMagic, envVersion, 1, 'k'}); ok {
		t.Fatal("a truncated envelope has a tag")
	}
}
