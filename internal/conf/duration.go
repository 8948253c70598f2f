package conf

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that reads and writes Go duration syntax in
// YAML ("10ms", "24h"); see the package doc for what is accepted.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the shortest Go syntax that parses back to d: "24h" rather
// than time.Duration's "24h0m0s", because it is shown to operators.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// ParseDuration parses Go duration syntax. A bare "0" is zero; any other
// bare number is an error because its unit would be a guess.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, &ValueError{Type: "duration", Value: s, Reason: "empty; write e.g. 500ms, 10s, 24h"}
	}
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		if n == 0 {
			return 0, nil
		}
		return 0, &ValueError{Type: "duration", Value: s, Reason: "a duration needs a unit, e.g. " + t + "s or " + t + "ms"}
	}
	if days, ok := strings.CutSuffix(t, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil {
			return 0, &ValueError{Type: "duration", Value: s, Reason: "there is no day unit; write " + strconv.Itoa(n*24) + "h"}
		}
	}
	v, err := time.ParseDuration(t)
	if err != nil {
		return 0, &ValueError{Type: "duration", Value: s, Reason: "use Go duration syntax with units ns, us, ms, s, m, h, e.g. 1h30m"}
	}
	return Duration(v), nil
}

// UnmarshalYAML accepts a scalar in Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &ValueError{Type: "duration", Value: nodeText(n), Reason: "must be a scalar such as 10s"}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the String form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText lets flags and JSON use the same syntax as YAML.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText writes the String form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func nodeText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "{...}"
	case yaml.SequenceNode:
		return "[...]"
	default:
		return n.Value
	}
}
