package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestRoundTripAllFormats(t *testing.T) {
	for _, f := range []Format{JSON, CBOR, Binary} {
		t.Run(f.String(), func(t *testing.T) {
			g := NewGenerator("dev-00042", 7, 42, f, true)
			var last uint64
			for seq := uint64(1); seq <= 200; seq++ {
				b := g.Next(seq, 1_700_000_000_000+int64(seq)*1000, 0)
				id, err := Decode(b)
				if err != nil {
					t.Fatalf("seq %d: %v (%q)", seq, err, b)
				}
				if id.Device != "dev-00042" || id.Seq != seq || id.Format != f || id.Seq <= last {
					t.Fatalf("decoded %+v at seq %d", id, seq)
				}
				if id.TS != 1_700_000_000_000+int64(seq)*1000 {
					t.Fatalf("ts %d", id.TS)
				}
				last = id.Seq
			}
		})
	}
}

func TestJSONAndCBORCarryPlausibleTelemetry(t *testing.T) {
	gj := NewGenerator("truck-1", 3, 1, JSON, true)
	gc := NewGenerator("truck-1", 3, 1, CBOR, true)
	var prev map[string]any
	for seq := uint64(1); seq <= 500; seq++ {
		var mj, mc map[string]any
		if err := json.Unmarshal(gj.Next(seq, 1, 0), &mj); err != nil {
			t.Fatal(err)
		}
		if err := cbor.Unmarshal(gc.Next(seq, 1, 0), &mc); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"device", "seq", "ts", "temp_c", "humidity", "battery", "rssi", "lat", "lon", "speed_kmh", "heading"} {
			if _, ok := mj[k]; !ok {
				t.Fatalf("json lacks %s: %v", k, mj)
			}
			if _, ok := mc[k]; !ok {
				t.Fatalf("cbor lacks %s: %v", k, mc)
			}
		}
		// Same seed and device: same values in both encodings.
		if mj["temp_c"].(float64) != mc["temp_c"].(float64) || mj["lat"].(float64) != mc["lat"].(float64) {
			t.Fatalf("json %v vs cbor %v", mj, mc)
		}
		temp, hum, batt, rssi := mj["temp_c"].(float64), mj["humidity"].(float64), mj["battery"].(float64), mj["rssi"].(float64)
		if temp < -20 || temp > 60 || hum < 5 || hum > 95 || batt < 0 || batt > 100 || rssi < -120 || rssi > -30 {
			t.Fatalf("implausible reading %v", mj)
		}
		if prev != nil {
			if d := math.Abs(temp - prev["temp_c"].(float64)); d > 1 {
				t.Fatalf("temperature jumped by %.2f", d)
			}
			if batt > prev["battery"].(float64) {
				t.Fatalf("battery charged itself: %v -> %v", prev["battery"], batt)
			}
			dlat := math.Abs(mj["lat"].(float64) - prev["lat"].(float64))
			if dlat > 0.01 {
				t.Fatalf("tracker jumped %.4f° in one sample", dlat)
			}
		}
		prev = mj
	}
	// Fixed sensors have no GPS fields.
	var m map[string]any
	_ = json.Unmarshal(NewGenerator("s", 1, 1, JSON, false).Next(1, 1, 0), &m)
	if _, ok := m["lat"]; ok {
		t.Fatalf("non-mobile device has GPS: %v", m)
	}
}

func TestDeterministicWithSeed(t *testing.T) {
	a := NewGenerator("d", 99, 5, JSON, true)
	b := NewGenerator("d", 99, 5, JSON, true)
	c := NewGenerator("d", 100, 5, JSON, true)
	same := true
	for seq := uint64(1); seq <= 50; seq++ {
		x, y, z := a.Next(seq, 1, 0), b.Next(seq, 1, 0), c.Next(seq, 1, 0)
		if !bytes.Equal(x, y) {
			t.Fatalf("same seed differs at %d:\n%s\n%s", seq, x, y)
		}
		same = same && bytes.Equal(x, z)
	}
	if same {
		t.Fatal("different seeds gave identical payloads")
	}
	for _, f := range []Format{Binary} {
		x := NewGenerator("d", 1, 1, f, false).Next(3, 1, 4096)
		y := NewGenerator("d", 1, 1, f, false).Next(3, 1, 4096)
		if !bytes.Equal(x, y) {
			t.Fatal("binary blobs differ for the same seed")
		}
	}
}

func TestSizes(t *testing.T) {
	for _, f := range []Format{JSON, CBOR, Binary} {
		g := NewGenerator("dev-1", 1, 1, f, false)
		for _, size := range []int{0, 10, 300, 1000, 4096, 70000, 1 << 20} {
			b := g.Next(1, 1, size)
			switch {
			case f == Binary && size >= 40 && len(b) != size:
				t.Errorf("%v size %d: got %d bytes", f, size, len(b))
			case f != Binary && size > 200 && (len(b) < size || len(b) > size+8):
				t.Errorf("%v size %d: got %d bytes", f, size, len(b))
			}
			if _, err := Decode(b); err != nil {
				t.Errorf("%v size %d: %v", f, size, err)
			}
			if f == JSON && !json.Valid(b) {
				t.Errorf("invalid JSON at size %d", size)
			}
		}
	}
}

func TestDecodeRejectsForeignData(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("hello"), []byte(`{"temp":1}`), []byte(`{"device":"x"}`), []byte("WSIM\x02\x01x"), {0xa1, 0x61, 0x61, 0x01}, []byte("{broken")} {
		if _, err := Decode(b); !errors.Is(err, ErrNotSimulated) {
			t.Errorf("Decode(%q) = %v", b, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"json": JSON, "cbor": CBOR, "binary": Binary, "": JSON} {
		if got, err := ParseFormat(s); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseFormat("xml"); !errors.Is(err, ErrUnknownFormat) {
		t.Fatal(err)
	}
	var f Format
	if err := f.UnmarshalText([]byte("cbor")); err != nil || f != CBOR {
		t.Fatal(f, err)
	}
}

func BenchmarkNext(b *testing.B) {
	for _, f := range []Format{JSON, CBOR, Binary} {
		b.Run(f.String(), func(b *testing.B) {
			g := NewGenerator("dev-00001", 1, 1, f, true)
			b.ReportAllocs()
			for i := range b.N {
				g.Next(uint64(i), 1, 0)
			}
		})
	}
}
