package conf

import (
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ByteSize is a number of bytes that reads "512", "4KiB", "1MB" in YAML;
// see the package doc for the units.
type ByteSize int64

// Units. KB..TB are decimal, KiB..TiB binary.
const (
	B   ByteSize = 1
	KB  ByteSize = 1000
	MB  ByteSize = 1000 * KB
	GB  ByteSize = 1000 * MB
	TB  ByteSize = 1000 * GB
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

// sizeUnits is ordered largest first so String picks the biggest exact unit.
var sizeUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB}, {"TB", TB}, {"GiB", GiB}, {"GB", GB},
	{"MiB", MiB}, {"MB", MB}, {"KiB", KiB}, {"KB", KB}, {"B", B},
}

const sizeUnitList = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"

// Bytes returns the size as an int64.
func (b ByteSize) Bytes() int64 { return int64(b) }

// String writes the size with the unit that gives the smallest whole
// number ("1MiB", "1GB", "1500B"), so it parses back to the same value.
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	if b < 0 {
		return strconv.FormatInt(int64(b), 10) + "B"
	}
	for _, u := range sizeUnits {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// ParseByteSize parses a whole number with an optional unit.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		reason := "must be a whole number of bytes with an optional unit (" + sizeUnitList + "), e.g. 512KiB"
		if strings.HasPrefix(t, "-") {
			reason = "must not be negative"
		}
		return 0, &ValueError{Type: "size", Value: s, Reason: reason}
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, &ValueError{Type: "size", Value: s, Reason: "number too large"}
	}
	unit := strings.TrimSpace(t[i:])
	if strings.HasPrefix(unit, ".") {
		return 0, &ValueError{Type: "size", Value: s, Reason: "must be a whole number; use a smaller unit (e.g. 1536KiB instead of 1.5MiB)"}
	}
	mult := B
	if unit != "" {
		found := false
		for _, u := range sizeUnits {
			if strings.EqualFold(unit, u.name) {
				mult, found = u.size, true
				break
			}
		}
		if !found {
			return 0, &ValueError{Type: "size", Value: s, Reason: "unknown unit " + strconv.Quote(unit) + " (use " + sizeUnitList + ")"}
		}
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, &ValueError{Type: "size", Value: s, Reason: "too large"}
	}
	return ByteSize(n) * mult, nil
}

// UnmarshalYAML accepts a plain integer (bytes) or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &ValueError{Type: "size", Value: nodeText(n), Reason: "must be a scalar such as 4KiB"}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes the String form.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalText lets flags and JSON use the same syntax as YAML.
func (b *ByteSize) UnmarshalText(t []byte) error {
	v, err := ParseByteSize(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText writes the String form.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }
