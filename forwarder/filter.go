package forwarder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// Filter selects the records a sink delivers. A record passes when its
// topic matches one of Topics (or Topics is empty) and every JSON
// condition holds. Records that do not pass are not sent but still move
// the sink's watermark, so they are never counted as lag or lost.
type Filter struct {
	Topics []string   `yaml:"topics"` // MQTT topic filters (+ and #)
	JSON   []JSONCond `yaml:"json"`
}

// JSONCond holds when the payload is a JSON object whose field at Path
// (dot separated, e.g. alarm.level) equals Equals: a string field
// compares as the string, a number numerically ("3" equals 3.0), true,
// false and null as their JSON text.
type JSONCond struct {
	Path   string `yaml:"path"`
	Equals string `yaml:"equals"`
}

// Validate checks the filter's syntax; paths are relative to it.
func (f Filter) Validate() []error {
	var errs conf.ErrorList
	for i, t := range f.Topics {
		if err := checkTopicFilter(t); err != nil {
			errs.Add(conf.Index("topics", i), "%v", err)
		}
	}
	for i, c := range f.JSON {
		if c.Path == "" || strings.HasPrefix(c.Path, ".") || strings.HasSuffix(c.Path, ".") || strings.Contains(c.Path, "..") {
			errs.Add(conf.Index("json", i)+".path", "%q is not a dot-separated field path such as alarm.level", c.Path)
		}
	}
	return errs
}

func (f Filter) empty() bool { return len(f.Topics) == 0 && len(f.JSON) == 0 }

// match reports whether r passes.
func (f Filter) match(r *shards.Record) bool {
	if len(f.Topics) > 0 {
		ok := false
		for _, t := range f.Topics {
			if topicMatches(t, r.Topic) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.JSON) == 0 {
		return true
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return false
	}
	for _, c := range f.JSON {
		if !c.holds(doc) {
			return false
		}
	}
	return true
}

func (c JSONCond) holds(doc any) bool {
	v := doc
	for _, part := range strings.Split(c.Path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[part]; !ok {
			return false
		}
	}
	switch x := v.(type) {
	case string:
		return x == c.Equals
	case json.Number:
		a, err1 := strconv.ParseFloat(x.String(), 64)
		b, err2 := strconv.ParseFloat(c.Equals, 64)
		return err1 == nil && err2 == nil && a == b
	case bool:
		return strconv.FormatBool(x) == c.Equals
	case nil:
		return c.Equals == "null"
	}
	return false // objects and arrays never equal a scalar
}

// checkTopicFilter applies the MQTT rules: # only as the last level, + and
// # alone in their level.
func checkTopicFilter(f string) error {
	if f == "" {
		return fmt.Errorf("empty topic filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("%q: # must be alone in the last level", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("%q: + must be alone in its level", f)
		}
	}
	return nil
}

// topicMatches matches an MQTT topic filter against a topic name. As in
// MQTT, wildcards at the first level do not match topics starting with $.
func topicMatches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a".
			return fmore == tmore || (!tmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
