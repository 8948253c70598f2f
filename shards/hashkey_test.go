package shards

import (
	"crypto/md5"
	"math/big"
	"testing"
)

func TestEvenRangesMatchKinesalite(t *testing.T) {
	r := EvenRanges(2)
	if got, want := r[0][1].String(), "170141183460469231731687303715884105727"; got != want {
		t.Fatalf("first of two shards ends at %s, want %s", got, want)
	}
	if r[1][0] != r[0][1].Add1() || r[1][1] != MaxHashKey || r[0][0] != (HashKey{}) {
		t.Fatalf("ranges do not tile the space: %v", r)
	}
	for _, n := range []int{1, 3, 4, 7, 64} {
		rs := EvenRanges(n)
		if len(rs) != n || rs[0][0] != (HashKey{}) || rs[n-1][1] != MaxHashKey {
			t.Fatalf("n=%d: bad ends %v", n, rs)
		}
		for i := 1; i < n; i++ {
			if rs[i][0] != rs[i-1][1].Add1() {
				t.Fatalf("n=%d: gap or overlap between %d and %d", n, i-1, i)
			}
		}
	}
}

func TestHashOfIsMD5BigEndian(t *testing.T) {
	for _, k := range []string{"a", "dev-00001", "ünïcødé", "x"} {
		sum := md5.Sum([]byte(k))
		want := new(big.Int).SetBytes(sum[:])
		if got := HashOf(k).Big(); got.Cmp(want) != 0 {
			t.Errorf("HashOf(%q) = %s, want %s", k, got, want)
		}
	}
}

func TestParseHashKey(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"1", true}, {"340282366920938463463374607431768211455", true},
		{"340282366920938463463374607431768211456", false}, {"", false}, {"01", false}, {"-1", false}, {"1e3", false},
	} {
		h, err := ParseHashKey(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseHashKey(%q) err=%v, want ok=%v", tc.in, err, tc.ok)
		}
		if err == nil && h.String() != tc.in {
			t.Errorf("round trip %q -> %s", tc.in, h)
		}
	}
}
