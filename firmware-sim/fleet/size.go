package fleet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadSize reports a malformed size or size range.
var ErrBadSize = errors.New("fleet: bad size")

// SizeRange is a payload size in bytes, fixed (Min == Max) or drawn
// uniformly per message from [Min, Max]. The zero value means "the
// natural size of the payload format".
type SizeRange struct {
	Min, Max int
}

// ParseSize parses a byte count with an optional unit (B, KB, KiB, MB, MiB;
// KB/MB are 1000-based, KiB/MiB 1024-based).
func ParseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suf  string
		mult int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}}
	mult := 1
	for _, u := range units {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suf)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<31 {
		return 0, fmt.Errorf("%w %q (want e.g. 200, 4KiB, 1MiB)", ErrBadSize, s)
	}
	return int(n * float64(mult)), nil
}

// ParseSizeRange parses "N" or "MIN-MAX" (e.g. "64KiB-256KiB").
func ParseSizeRange(s string) (SizeRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := ParseSize(lo)
	if err != nil {
		return SizeRange{}, err
	}
	if !isRange {
		return SizeRange{a, a}, nil
	}
	b, err := ParseSize(hi)
	if err != nil {
		return SizeRange{}, err
	}
	if b < a {
		return SizeRange{}, fmt.Errorf("%w %q: max below min", ErrBadSize, s)
	}
	return SizeRange{a, b}, nil
}

func (r SizeRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// UnmarshalText lets scenario files and flags write sizes as text.
func (r *SizeRange) UnmarshalText(b []byte) error {
	v, err := ParseSizeRange(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText is the inverse of UnmarshalText.
func (r SizeRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }
