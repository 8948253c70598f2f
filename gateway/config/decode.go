package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weir-gateway/weir/internal/conf"
)

// decoder fills a File from a yaml.v3 node tree, recording the line of
// every key path it sees and an *Error for every key or value it cannot
// take, and carrying on so that all problems are reported together.
//
// yaml.v3 does all of YAML: syntax, aliases, merge keys and duplicate keys
// (each mapping is decoded by it into map[string]yaml.Node) and the
// conversion of every scalar (Node.Decode). The decoder only matches keys
// to the fields of the Go types, which is what Decoder.KnownFields does,
// so that an unknown key can be named with its path, its line and the key
// the operator probably meant.
type decoder struct {
	file  string
	lines map[string]int  // key path -> line of the key
	bad   map[string]bool // paths that failed to decode; validation skips them
	errs  Errors
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	defaulterType   = reflect.TypeFor[interface{ Defaults() }]()
)

const emptyConfig = "empty configuration: the file has no keys (run weir without --config for the built-in defaults)"

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
			d.fail(0, "", emptyConfig)
		} else {
			d.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.fail(extra.Line, "", "a second YAML document (---) is not allowed; put everything in one")
		return nil
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.fail(0, "", emptyConfig)
			return nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		d.fail(root.Line, "", emptyConfig)
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "", "the top level must be a mapping of keys such as data_dir and streams, got %s", kindName(root))
		return nil
	}
	return root
}

// syntaxError reports a file yaml.v3 cannot parse. The library gives the
// line only inside its message, which is passed on whole rather than
// taken apart.
func (d *decoder) syntaxError(err error) {
	d.fail(0, "", "not valid YAML: %v", err)
}

// target is the node an alias stands for. Anchors are never on aliases,
// so one step is all there is.
func target(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = target(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n = target(n); n.Kind {
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
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if isNull(n) {
			v.SetZero()
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n.Line, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Map:
		d.stringMap(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

// scalar decodes a leaf. The tag checks are weir's policy, stricter than
// yaml.v3: a string must not be a bare true/false, a boolean must be
// true or false (not YAML 1.1's yes/on), a number must be written as one.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	t := target(n)
	if isNull(t) {
		v.SetZero()
		return
	}
	var want string
	ok := t.Kind == yaml.ScalarNode
	switch v.Kind() {
	case reflect.String:
		want, ok = "a string", ok && t.Tag != "!!bool"
	case reflect.Bool:
		want, ok = "true or false", ok && t.Tag == "!!bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want, ok = "an integer", ok && t.Tag == "!!int"
	case reflect.Float32, reflect.Float64:
		want, ok = "a number", ok && (t.Tag == "!!int" || t.Tag == "!!float")
	default:
		d.fail(n.Line, path, "cannot decode into %s", v.Type())
		return
	}
	if !ok {
		d.fail(n.Line, path, "must be %s, got %s", want, kindName(t))
		return
	}
	// Decode into a fresh value so a failure leaves the default in place.
	out := reflect.New(v.Type())
	if err := t.Decode(out.Interface()); err != nil {
		d.fail(n.Line, path, "integer %s out of range", t.Value)
		return
	}
	// Counts are capped at 32 bits so that a file means the same on
	// 32-bit ARM gateways as on the machine that checked it.
	if e := out.Elem(); e.CanInt() && (e.Int() > math.MaxInt32 || e.Int() < math.MinInt32) ||
		e.CanUint() && e.Uint() > math.MaxUint32 {
		d.fail(n.Line, path, "integer %s out of range", t.Value)
		return
	}
	v.Set(out.Elem())
}

// entry is one key of a mapping as yaml.v3 resolved it, with the line of
// the key where the file wrote it (for a merged key, in the merged mapping).
type entry struct {
	key  string
	line int
	val  yaml.Node
}

// entries lets yaml.v3 resolve the mapping n (aliases, merge keys,
// duplicate keys) and returns its keys in file order. On a refusal it
// records an error and returns false.
func (d *decoder) entries(n *yaml.Node, path string, what string) ([]entry, bool) {
	if target(n).Kind != yaml.MappingNode {
		d.fail(n.Line, path, "must be %s, got %s", what, kindName(n))
		return nil, false
	}
	var m map[string]yaml.Node
	if err := n.Decode(&m); err != nil {
		d.explainMapping(target(n), path, err)
		return nil, false
	}
	keyLines := map[string]int{}
	content := target(n).Content
	for i := 0; i+1 < len(content); i += 2 {
		if k := content[i]; k.Kind == yaml.ScalarNode && keyLines[k.Value] == 0 {
			keyLines[k.Value] = k.Line
		}
	}
	out := make([]entry, 0, len(m))
	for k, v := range m {
		line, own := keyLines[k]
		if !own {
			line = v.Line
		}
		out = append(out, entry{key: k, line: line, val: v})
	}
	slices.SortFunc(out, func(a, b entry) int {
		if a.line != b.line {
			return a.line - b.line
		}
		return strings.Compare(a.key, b.key)
	})
	return out, true
}

// explainMapping says why yaml.v3 refused a mapping. The library's reasons
// come as text only, so the two an operator meets (a key written twice, a
// key that is not a name) are found again in the node itself; anything
// else is passed on in the library's words.
func (d *decoder) explainMapping(n *yaml.Node, path string, err error) {
	first := map[string]int{}
	found := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "keys must be plain names, got %s", kindName(k))
			found = true
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.fail(k.Line, conf.Join(path, k.Value), "duplicate key (first at line %d)", line)
			found = true
			continue
		}
		first[k.Value] = k.Line
	}
	if !found {
		d.fail(n.Line, path, "%v", err)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "mqtt:" with nothing under it: keep the defaults
	}
	es, ok := d.entries(n, path, "a mapping of keys (key: value)")
	if !ok {
		return
	}
	fields, names := structFields(v.Type())
	for _, e := range es {
		kpath := conf.Join(path, e.key)
		idx, ok := fields[e.key]
		if !ok {
			d.fail(e.line, kpath, "unknown key %q%s", e.key, suggest(e.key, names))
			continue
		}
		d.lines[kpath] = e.line
		d.decode(&e.val, v.FieldByIndex(idx), kpath)
	}
}

// stringMap decodes a mapping whose keys are names the operator chooses
// (map[string]T); its values decode like any other.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n.Line, path, "cannot decode into %s", v.Type())
		return
	}
	es, ok := d.entries(n, path, "a mapping of keys (key: value)")
	if !ok {
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), len(es))
	for _, e := range es {
		kpath := conf.Join(path, e.key)
		d.lines[kpath] = e.line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(&e.val, elem, kpath)
		out.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), elem)
	}
	v.Set(out)
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if target(n).Kind != yaml.SequenceNode {
		d.fail(n.Line, path, "must be a list (entries starting with -), got %s", kindName(n))
		return
	}
	items := target(n).Content
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
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

// structFields maps yaml key names to field indexes, as yaml.v3 names
// them (the tag's name, else the lower-cased field name; ",inline" structs
// lend their keys), and lists the names in declaration order for
// suggestions.
func structFields(t reflect.Type) (map[string][]int, []string) {
	m := map[string][]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			inner, innerNames := structFields(f.Type)
			for _, n := range innerNames {
				m[n] = append([]int{i}, inner[n]...)
			}
			names = append(names, innerNames...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = []int{i}
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
