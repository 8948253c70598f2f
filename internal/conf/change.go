package conf

import (
	"fmt"
	"reflect"
	"strings"
)

// Effect is what a configuration reload does with one changed key.
type Effect int

// The effects a reload reports.
const (
	// Live: the running gateway applied the new value.
	Live Effect = iota
	// Restart: the running gateway keeps the old value; the new one takes
	// effect at the next start.
	Restart
	// Kept: the file's value is not applied by a reload nor by a restart
	// (e.g. the shard count of a stream that exists); Note says what does.
	Kept
)

func (e Effect) String() string {
	switch e {
	case Live:
		return "live"
	case Restart:
		return "restart needed"
	default:
		return "not applied"
	}
}

// Change is one difference between the running configuration and a new
// one. Path is relative to the section that reported it until Nest puts
// the section in front.
type Change struct {
	Path     string
	Old, New string // formatted values; "" when absent
	Effect   Effect
	Note     string // why, or what to do instead
}

// String formats "path: old → new (note)", or "path: added new" and
// "path: removed old" for a value that is only on one side.
func (c Change) String() string {
	var b strings.Builder
	b.WriteString(c.Path + ": ")
	switch {
	case c.Old == "" && c.New != "":
		b.WriteString("added " + c.New)
	case c.New == "" && c.Old != "":
		b.WriteString("removed " + c.Old)
	default:
		b.WriteString(c.Old + " → " + c.New)
	}
	if c.Note != "" {
		b.WriteString(" (" + c.Note + ")")
	}
	return b.String()
}

// Changes is what a reload would do, in the order the keys were compared.
type Changes []Change

// Add records a change of path from old to new.
func (cs *Changes) Add(e Effect, path string, old, new any, note string) {
	*cs = append(*cs, Change{Path: path, Old: format(old), New: format(new), Effect: e, Note: note})
}

// Nest appends in with prefix in front of each path.
func (cs *Changes) Nest(prefix string, in Changes) {
	for _, c := range in {
		c.Path = Join(prefix, c.Path)
		*cs = append(*cs, c)
	}
}

// Only returns the changes with effect e.
func (cs Changes) Only(e Effect) Changes {
	var out Changes
	for _, c := range cs {
		if c.Effect == e {
			out = append(out, c)
		}
	}
	return out
}

// Compare records a change of path with effect e when old and new differ.
func Compare[T comparable](cs *Changes, e Effect, path string, old, new T) {
	if old != new {
		cs.Add(e, path, old, new, "")
	}
}

func format(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		if v == "" {
			return `""`
		}
		return v
	default:
		return fmt.Sprint(v)
	}
}

// DiffFields records with effect e every key whose value differs between
// old and next, two values of one struct type: structs are walked by
// their yaml keys, lists compared by position (an element only on one
// side is added or removed whole). Paths are prefix plus the keys.
// Sections whose keys share one effect use it, so a key added to the
// struct later is reported without anyone remembering to list it.
func DiffFields(cs *Changes, e Effect, prefix string, old, next any) {
	diffValue(cs, e, prefix, reflect.ValueOf(old), reflect.ValueOf(next))
}

func diffValue(cs *Changes, e Effect, path string, a, b reflect.Value) {
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || key == "-" || key == "" {
				continue
			}
			diffValue(cs, e, Join(path, key), a.Field(i), b.Field(i))
		}
		return
	case reflect.Slice:
		for i := range max(a.Len(), b.Len()) {
			p := Index(path, i)
			switch {
			case i >= a.Len():
				cs.Add(e, p, nil, b.Index(i).Interface(), "")
			case i >= b.Len():
				cs.Add(e, p, a.Index(i).Interface(), nil, "")
			default:
				diffValue(cs, e, p, a.Index(i), b.Index(i))
			}
		}
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		cs.Add(e, path, a.Interface(), b.Interface(), "")
	}
}
