package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weir-gateway/weir/internal/conf"
)

// decoder fills a File from a yaml.v3 node tree, recording the line of
// every key path it sees and an *Error for every key or value it cannot
// take, and carrying on so that all problems are reported together.
type decoder struct {
	file  string
	lines map[string]int  // key path -> line of the key
	bad   map[string]bool // paths that failed to decode; validation skips them
	errs  Errors
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	defaulterType   = reflect.TypeFor[interface{ Defaults() }]()
	yamlLineRE      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// maxAliasDepth bounds alias and merge chains, which a hostile or broken
// file could make cyclic.
const maxAliasDepth = 32

func (d *decoder) fail(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	d.bad[path] = true
}

// document parses data into its single document's root node. It returns
// nil after recording an error when there is no usable document.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.fail(0, "", "empty configuration: the file has no keys (run weir without --config for the built-in defaults)")
		} else {
			d.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.fail(extra.Line, "", "a second YAML document (---) is not allowed; put everything in one")
		return nil
	case !errors.Is(err, io.EOF):
		d.yamlError(err)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.fail(0, "", "empty configuration: the file has no keys (run weir without --config for the built-in defaults)")
			return nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		d.fail(root.Line, "", "empty configuration: the file has no keys (run weir without --config for the built-in defaults)")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "", "the top level must be a mapping of keys such as data_dir and streams, got %s", kindName(root))
		return nil
	}
	return root
}

func (d *decoder) yamlError(err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.fail(line, "", "YAML syntax: %s", m[2])
		return
	}
	d.fail(0, "", "YAML syntax: %s", strings.TrimPrefix(msg, "yaml: "))
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	default:
		return "something else"
	}
}

// decode sets v from n. v holds the defaults, which stay for absent keys.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		d.fail(0, path, "alias chain too deep")
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if isNull(n) {
			v.SetZero()
			return
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n.Line, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		switch {
		case isNull(n):
			v.SetString("")
		case n.Kind != yaml.ScalarNode || n.Tag == "!!bool":
			d.fail(n.Line, path, "must be a string, got %s", kindName(n))
		default:
			v.SetString(n.Value)
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n.Line, path, "must be true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if isNull(n) {
			v.SetInt(0)
			return
		}
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.fail(n.Line, path, "must be an integer, got %s", kindName(n))
			return
		}
		// Counts are capped at 32 bits so that a file means the same on
		// 32-bit ARM gateways as on the machine that checked it.
		if v.OverflowInt(i) || i > math.MaxInt32 || i < math.MinInt32 {
			d.fail(n.Line, path, "integer %d out of range", i)
			return
		}
		v.SetInt(i)
	default:
		d.fail(n.Line, path, "cannot decode into %s", v.Type())
	}
}

type pair struct{ key, val *yaml.Node }

// pairs lists the entries of a mapping with merge keys expanded: explicit
// entries first, then merged ones whose keys are not already present, as
// YAML's merge rule says.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag != "!!merge" {
			own = append(own, pair{k, val})
			continue
		}
		if depth >= maxAliasDepth {
			d.fail(k.Line, path, "merge chain too deep")
			continue
		}
		src := resolve(val)
		var maps []*yaml.Node
		switch src.Kind {
		case yaml.MappingNode:
			maps = []*yaml.Node{src}
		case yaml.SequenceNode:
			for _, m := range src.Content {
				maps = append(maps, resolve(m))
			}
		}
		for _, m := range maps {
			if m == nil || m.Kind != yaml.MappingNode {
				d.fail(k.Line, path, "<< must merge a mapping or a list of mappings")
				continue
			}
			merged = append(merged, d.pairs(m, path, depth+1)...)
		}
	}
	seen := map[string]bool{}
	for _, p := range own {
		seen[p.key.Value] = true
	}
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			own = append(own, p)
		}
	}
	return own
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "mqtt:" with nothing under it: keep the defaults
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "must be a mapping of keys (key: value), got %s", kindName(n))
		return
	}
	fields, names := structFields(v.Type())
	first := map[string]int{}
	for _, p := range d.pairs(n, path, 0) {
		k := p.key
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		name := k.Value
		kpath := conf.Join(path, name)
		if line, dup := first[name]; dup {
			d.fail(k.Line, kpath, "duplicate key (first at line %d)", line)
			continue
		}
		first[name] = k.Line
		idx, ok := fields[name]
		if !ok {
			d.fail(k.Line, kpath, "unknown key %q%s", name, suggest(name, names))
			continue
		}
		d.lines[kpath] = k.Line
		d.decode(p.val, v.Field(idx), kpath)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, path, "must be a list (entries starting with -), got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ipath := conf.Index(path, i)
		d.lines[ipath] = item.Line
		elem := out.Index(i)
		if elem.Addr().Type().Implements(defaulterType) {
			elem.Addr().Interface().(interface{ Defaults() }).Defaults()
		}
		d.decode(item, elem, ipath)
	}
	v.Set(out)
}

// structFields maps yaml key names to field indexes and lists the names in
// declaration order for suggestions.
func structFields(t reflect.Type) (map[string]int, []string) {
	m := make(map[string]int, t.NumField())
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
		names = append(names, name)
	}
	return m, names
}

// suggest names the known key closest to an unknown one, or lists the
// known keys when none is close: either way the operator learns what to
// write instead.
func suggest(name string, known []string) string {
	best, bestD := "", math.MaxInt
	lname := strings.ToLower(name)
	for _, k := range known {
		dist := editDistance(lname, k)
		if dist < bestD {
			best, bestD = k, dist
		}
	}
	limit := max(2, len(name)/4)
	if best != "" && bestD <= limit {
		return fmt.Sprintf(", did you mean %q?", best)
	}
	for _, k := range known {
		if len(lname) >= 3 && (strings.HasPrefix(k, lname) || strings.HasPrefix(lname, k)) {
			return fmt.Sprintf(", did you mean %q?", k)
		}
	}
	return "; valid keys here: " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance over bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
