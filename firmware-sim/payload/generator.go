package payload

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"

	"github.com/fxamacker/cbor/v2"
)

// binaryMagic starts every binary payload; see the package doc.
const binaryMagic = "WSIM"

const binaryVersion = 1

// reading is the telemetry object; field names are the wire keys.
type reading struct {
	Device   string   `json:"device" cbor:"device"`
	Seq      uint64   `json:"seq" cbor:"seq"`
	TS       int64    `json:"ts" cbor:"ts"`
	Temp     float64  `json:"temp_c" cbor:"temp_c"`
	Humidity float64  `json:"humidity" cbor:"humidity"`
	Battery  float64  `json:"battery" cbor:"battery"`
	RSSI     int      `json:"rssi" cbor:"rssi"`
	Lat      *float64 `json:"lat,omitempty" cbor:"lat,omitempty"`
	Lon      *float64 `json:"lon,omitempty" cbor:"lon,omitempty"`
	Speed    *float64 `json:"speed_kmh,omitempty" cbor:"speed_kmh,omitempty"`
	Heading  *float64 `json:"heading,omitempty" cbor:"heading,omitempty"`
}

type cborReading struct {
	reading
	Pad []byte `cbor:"pad,omitempty"`
}

// Generator produces one device's payloads. It is not safe for concurrent
// use; the simulator lets one goroutine at a time own a device.
type Generator struct {
	device  string
	format  Format
	mobile  bool
	rng     rand.PCG
	temp    float64
	hum     float64
	battery float64
	rssiMid float64
	rssi    float64
	lat     float64
	lon     float64
	heading float64
	speed   float64
}

// NewGenerator seeds a generator from (seed, index): the same pair always
// yields the same sequence of sensor values.
func NewGenerator(device string, seed, index uint64, format Format, mobile bool) *Generator {
	g := &Generator{device: device, format: format, mobile: mobile}
	g.rng.Seed(seed^0x9e3779b97f4a7c15, index*0xbf58476d1ce4e5b9+1)
	r := rand.New(&g.rng)
	g.temp = 18 + r.Float64()*8
	g.hum = 35 + r.Float64()*30
	g.battery = 60 + r.Float64()*40
	g.rssiMid = -85 + r.Float64()*35
	g.rssi = g.rssiMid
	// Somewhere in western Europe, so the numbers look like real fixes.
	g.lat = 44 + r.Float64()*10
	g.lon = -2 + r.Float64()*14
	g.heading = r.Float64() * 360
	g.speed = r.Float64() * 60
	return g
}

// Device is the name written into every payload.
func (g *Generator) Device() string { return g.device }

// Rand exposes the generator's random source for choices that must stay
// deterministic with the payload (sizes, probes).
func (g *Generator) Rand() *rand.Rand { return rand.New(&g.rng) }

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// step advances the sensor state by one sample.
func (g *Generator) step(r *rand.Rand) {
	g.temp = clamp(g.temp+r.NormFloat64()*0.05, -20, 60)
	g.hum = clamp(g.hum+r.NormFloat64()*0.2, 5, 95)
	g.battery = math.Max(0, g.battery-0.001-r.Float64()*0.002)
	g.rssi = clamp(g.rssi+(g.rssiMid-g.rssi)*0.1+r.NormFloat64()*1.5, -120, -30)
	if g.mobile {
		g.heading = math.Mod(g.heading+r.NormFloat64()*10+360, 360)
		g.speed = clamp(g.speed+r.NormFloat64()*2, 0, 120)
		// Roughly one second of travel per sample.
		d := g.speed / 3600 / 111
		rad := g.heading * math.Pi / 180
		g.lat = clamp(g.lat+d*math.Cos(rad), -89, 89)
		g.lon += d * math.Sin(rad) / math.Max(0.1, math.Cos(g.lat*math.Pi/180))
		if g.lon > 180 {
			g.lon -= 360
		} else if g.lon < -180 {
			g.lon += 360
		}
	}
}

// Next returns the payload for seq, stamped tsMillis. size is the target
// length in bytes: 0 means the natural size of the format; a JSON or CBOR
// object is padded with a "pad" field to reach it and never truncated, a
// binary blob is exactly max(size, header).
func (g *Generator) Next(seq uint64, tsMillis int64, size int) []byte {
	r := rand.New(&g.rng)
	g.step(r)
	if g.format == Binary {
		return g.binary(r, seq, tsMillis, size)
	}
	rd := reading{
		Device: g.device, Seq: seq, TS: tsMillis,
		Temp: round(g.temp, 2), Humidity: round(g.hum, 1), Battery: round(g.battery, 2),
		RSSI: int(math.Round(g.rssi)),
	}
	if g.mobile {
		lat, lon, sp, hd := round(g.lat, 6), round(g.lon, 6), round(g.speed, 1), round(g.heading, 1)
		rd.Lat, rd.Lon, rd.Speed, rd.Heading = &lat, &lon, &sp, &hd
	}
	if g.format == CBOR {
		b, _ := cbor.Marshal(cborReading{reading: rd})
		if size > len(b) {
			// The pad entry costs a key and a byte-string header on top of
			// its bytes; grow it by the deficit until the target is reached.
			pad := max(0, size-len(b)-8)
			for {
				b2, _ := cbor.Marshal(cborReading{reading: rd, Pad: filler(pad)})
				if len(b2) >= size {
					return b2
				}
				pad += size - len(b2)
			}
		}
		return b
	}
	b, _ := json.Marshal(rd)
	if over := size - len(b) - len(`,"pad":""`); over > 0 {
		b = append(b[:len(b)-1], `,"pad":"`...)
		b = append(b, filler(over)...)
		b = append(b, `"}`...)
	}
	return b
}

// filler is printable, mildly compressible padding.
func filler(n int) []byte {
	const pattern = "telemetry-padding-0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}

func (g *Generator) binary(r *rand.Rand, seq uint64, ts int64, size int) []byte {
	name := g.device
	if len(name) > 255 {
		name = name[:255]
	}
	hdr := len(binaryMagic) + 2 + len(name) + 16
	n := max(size, hdr)
	b := make([]byte, hdr, n)
	copy(b, binaryMagic)
	b[4] = binaryVersion
	b[5] = byte(len(name))
	copy(b[6:], name)
	binary.BigEndian.PutUint64(b[6+len(name):], seq)
	binary.BigEndian.PutUint64(b[14+len(name):], uint64(ts))
	// Log/firmware chunks: random words with runs, i.e. partly compressible.
	for len(b) < n {
		w := r.Uint64()
		run := 1 + int(w>>60)
		for k := 0; k < run && len(b) < n; k++ {
			var tmp [8]byte
			binary.LittleEndian.PutUint64(tmp[:], w)
			b = append(b, tmp[:min(8, n-len(b))]...)
		}
	}
	return b
}
