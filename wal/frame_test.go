package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 11, 12, 200, 4096, 70000} {
		p := payloadFor(size, size)
		const idx = 123456789
		b := appendFrame(nil, idx, p)
		if int64(len(b)) != frameSize(size) {
			t.Fatalf("size %d: frame is %d bytes, want %d", size, len(b), frameSize(size))
		}
		got, n, err := decodeFrame(append(b, 0xAA, 0xBB), idx)
		if err != nil || n != len(b) || !bytes.Equal(got, p) {
			t.Fatalf("size %d: decode = %d bytes, n=%d, err=%v", size, len(got), n, err)
		}
		if _, _, err := decodeFrame(b, idx+1); !errors.Is(err, errBadCRC) {
			t.Fatalf("size %d: frame decoded at the wrong index: err=%v", size, err)
		}
		if _, _, err := decodeFrame(b[:len(b)-1], idx); !errors.Is(err, errShortFrame) {
			t.Fatalf("size %d: truncated frame: err=%v", size, err)
		}
	}
}

func TestFrameEveryBitFlipRejected(t *testing.T) {
	b := appendFrame(nil, 7, []byte("hello, frame"))
	for i := range len(b) * 8 {
		c := bytes.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		if _, _, err := decodeFrame(c, 7); err == nil {
			t.Fatalf("bit %d flipped: frame still accepted", i)
		}
	}
}

func TestFrameZeroHeaderIsEnd(t *testing.T) {
	for _, n := range []int{0, 5, frameHeaderSize, 100} {
		if _, _, err := decodeFrame(make([]byte, n), 1); !errors.Is(err, errZeroHeader) {
			t.Fatalf("%d zero bytes: err=%v, want errZeroHeader", n, err)
		}
	}
}

func TestSegmentHeader(t *testing.T) {
	h := encodeSegHeader(42, segFlagRecycled)
	if len(h) != segHeaderSize {
		t.Fatalf("header is %d bytes", len(h))
	}
	if got, err := decodeSegHeader(h); err != nil || got != (segHeader{first: 42, version: segVersion, flags: segFlagRecycled}) {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	if got, err := decodeSegHeader(encodeSegHeaderVersion(7, 1, 0)); err != nil || got.version != 1 || got.first != 7 {
		t.Fatalf("version 1 header: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{encodeSegHeaderVersion(7, 1, segFlagRecycled), encodeSegHeaderVersion(7, 4, 0), encodeSegHeaderVersion(7, 0, 0), encodeSegHeader(7, 2)} {
		if _, err := decodeSegHeader(bad); !errors.Is(err, errBadSegHeader) {
			t.Fatalf("header %x accepted: %v", bad, err)
		}
	}
	for i := range len(h) * 8 {
		c := bytes.Clone(h)
		c[i/8] ^= 1 << (i % 8)
		if _, err := decodeSegHeader(c); !errors.Is(err, errBadSegHeader) {
			t.Fatalf("bit %d flipped: header still accepted (err=%v)", i, err)
		}
	}
	if _, err := decodeSegHeader(make([]byte, segHeaderSize)); err == nil {
		t.Fatal("zero header accepted")
	}
}

func TestSegmentNames(t *testing.T) {
	if got := segmentName(1); got != "00000000000000000001.seg" {
		t.Fatalf("segmentName(1) = %q", got)
	}
	for _, bad := range []string{"1.seg", "0000000000000000000a.seg", "00000000000000000001.seg.tmp", "00000000000000000001.wal"} {
		if _, ok := parseSegmentName(bad); ok {
			t.Fatalf("parseSegmentName(%q) accepted", bad)
		}
	}
	if n, ok := parseSegmentName(segmentName(18446744073709551615)); !ok || n != 18446744073709551615 {
		t.Fatalf("max index: %d %v", n, ok)
	}
}

// FuzzDecodeFrame: the decoder must never panic, and must accept only
// bytes that are exactly the encoding of the payload it returns: a frame
// whose checksum does not match is never accepted.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, 1, []byte("seed")), uint64(1))
	f.Add(appendFrame(nil, 99, nil), uint64(99))
	f.Add(appendFrame(nil, 5, payloadFor(5, 300)), uint64(5))
	f.Add(appendLaneFrame(nil, 6, 513, []byte("a lane")), uint64(6))
	f.Add(appendPadFrame(nil, 8, 100), uint64(8))
	f.Add(appendPadFrame(nil, 9, frameHeaderSize), uint64(9))
	f.Add(make([]byte, 40), uint64(1))
	f.Add([]byte{1, 2, 3}, uint64(0))
	bad := appendFrame(nil, 3, []byte("flipped"))
	bad[14] ^= 0x40
	f.Add(bad, uint64(3))
	f.Fuzz(func(t *testing.T, b []byte, index uint64) {
		p, n, err := decodeFrame(b, index)
		if err != nil {
			if p != nil || n != 0 {
				t.Fatalf("error %v with payload/len", err)
			}
			return
		}
		if n > len(b) || n != frameHeaderSize+len(p) {
			t.Fatalf("n=%d for %d input bytes and %d payload bytes", n, len(b), len(p))
		}
		lane := binary.LittleEndian.Uint16(b[10:])
		re := appendLaneFrame(nil, index, lane, p)
		if b[9] == frameTypePad {
			re = appendPadFrame(nil, index, n)
		}
		if !bytes.Equal(re, b[:n]) {
			t.Fatalf("accepted a frame that is not the encoding of its payload:\n got %x\nwant %x", b[:n], re)
		}
	})
}

func TestCRCUint64MatchesCRC32(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xdeadbeef, 1<<64 - 1} {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		for _, seed := range []uint32{0, 0x12345678} {
			if got, want := crcUint64(seed, v), crc32.Update(seed, castagnoli, b[:]); got != want {
				t.Fatalf("crcUint64(%#x, %#x) = %#x, want %#x", seed, v, got, want)
			}
		}
	}
}

// FuzzDecodeFooter: the footer and trailer decoders never panic, and
// accept only bytes that are exactly the encoding of what they return.
func FuzzDecodeFooter(f *testing.F) {
	ft := &footer{first: 7, count: 40, minTag: 3, maxTag: 9, flags: footerTagsValid, segCRC: 0xabcdef, offsets: []uint32{32, 900}}
	f.Add(sealTail(ft, 5000), uint64(7), int64(5000))
	f.Add(sealTail(&footer{first: 1, offsets: []uint32{}}, 32), uint64(1), int64(32))
	f.Add(make([]byte, 100), uint64(1), int64(100))
	f.Fuzz(func(t *testing.T, b []byte, first uint64, end int64) {
		if end < segHeaderSize || end > 1<<40 {
			return
		}
		if len(b) >= trailerSize {
			size := end + int64(len(b))
			tr := b[len(b)-trailerSize:]
			if off, n, err := decodeTrailer(tr, first, size); err == nil {
				if off+int64(n)+trailerSize != size || !bytes.Equal(appendTrailer(nil, first, off, n), tr) {
					t.Fatalf("accepted trailer %x points at %d+%d in a file of %d bytes", tr, off, n, size)
				}
			}
		}
		got, err := decodeFooter(b, first, end)
		if err != nil {
			return
		}
		if re := appendFooter(nil, got); !bytes.Equal(re, b) {
			t.Fatalf("accepted a footer that is not the encoding of its contents:\n got %x\nwant %x", b, re)
		}
	})
}
