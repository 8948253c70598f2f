package shards

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
)

// HashKey is a point of the 128-bit hash space that Kinesis divides among
// shards. It is kept as two words rather than a big.Int because every
// append compares it against shard ranges.
type HashKey struct{ Hi, Lo uint64 }

// MaxHashKey is 2^128-1, the inclusive end of the hash space.
var MaxHashKey = HashKey{Hi: ^uint64(0), Lo: ^uint64(0)}

// HashOf returns the hash key of a partition key: the MD5 of its UTF-8
// bytes read as a big-endian unsigned integer, exactly as Kinesis does.
func HashOf(partitionKey string) HashKey {
	sum := md5.Sum([]byte(partitionKey))
	return HashKey{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// Cmp returns -1, 0 or +1.
func (h HashKey) Cmp(o HashKey) int {
	switch {
	case h.Hi < o.Hi:
		return -1
	case h.Hi > o.Hi:
		return 1
	case h.Lo < o.Lo:
		return -1
	case h.Lo > o.Lo:
		return 1
	}
	return 0
}

// Add1 returns h+1, wrapping at 2^128.
func (h HashKey) Add1() HashKey {
	lo, c := bits.Add64(h.Lo, 1, 0)
	return HashKey{Hi: h.Hi + c, Lo: lo}
}

// Sub1 returns h-1, wrapping at 0.
func (h HashKey) Sub1() HashKey {
	lo, b := bits.Sub64(h.Lo, 1, 0)
	return HashKey{Hi: h.Hi - b, Lo: lo}
}

// Big returns h as a big.Int.
func (h HashKey) Big() *big.Int {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], h.Hi)
	binary.BigEndian.PutUint64(b[8:], h.Lo)
	return new(big.Int).SetBytes(b[:])
}

// String formats h in decimal, as Kinesis does.
func (h HashKey) String() string { return h.Big().String() }

var maxHashBig = MaxHashKey.Big()

// ParseHashKey parses a decimal hash key in [0, 2^128-1], as accepted for
// ExplicitHashKey and NewStartingHashKey.
func ParseHashKey(s string) (HashKey, error) {
	if s == "" || len(s) > 39 || (len(s) > 1 && s[0] == '0') {
		return HashKey{}, fmt.Errorf("%w: hash key %q is not a decimal integer in [0, 2^128-1]", ErrInvalidArgument, s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return HashKey{}, fmt.Errorf("%w: hash key %q is not a decimal integer in [0, 2^128-1]", ErrInvalidArgument, s)
		}
	}
	b, _ := new(big.Int).SetString(s, 10)
	if b.Cmp(maxHashBig) > 0 {
		return HashKey{}, fmt.Errorf("%w: hash key %s exceeds 2^128-1", ErrInvalidArgument, s)
	}
	return hashFromBig(b), nil
}

func hashFromBig(b *big.Int) HashKey {
	var buf [16]byte
	b.FillBytes(buf[:])
	return HashKey{Hi: binary.BigEndian.Uint64(buf[:8]), Lo: binary.BigEndian.Uint64(buf[8:])}
}

// EvenRanges divides the hash space into n contiguous ranges the way
// kinesalite does: range i is [i*w, (i+1)*w-1] with w = floor(2^128/n), and
// the last range ends at 2^128-1 so no hash key is left unowned.
func EvenRanges(n int) [][2]HashKey {
	return evenRangesWithin(HashKey{}, MaxHashKey, n)
}

// evenRangesWithin divides [start, end] into n contiguous ranges by the same
// rule, used by UpdateShardCount.
func evenRangesWithin(start, end HashKey, n int) [][2]HashKey {
	lo, hi := start.Big(), end.Big()
	span := new(big.Int).Sub(hi, lo)
	span.Add(span, big.NewInt(1))
	w := new(big.Int).Div(span, big.NewInt(int64(n)))
	out := make([][2]HashKey, n)
	cur := new(big.Int).Set(lo)
	for i := 0; i < n; i++ {
		next := new(big.Int).Add(cur, w)
		last := new(big.Int).Sub(next, big.NewInt(1))
		if i == n-1 {
			last = hi
		}
		out[i] = [2]HashKey{hashFromBig(cur), hashFromBig(last)}
		cur = next
	}
	return out
}
