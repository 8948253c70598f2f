package scenario

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// locate prefixes a "path: message" error with file:line, where path is
// like groups[1].behaviour.slow.fraction. The deepest node that exists is
// used, so a missing key points at its parent.
func locate(name string, root *yaml.Node, msg string) string {
	path, _, ok := strings.Cut(msg, ": ")
	if !ok || root == nil || len(root.Content) == 0 {
		return name + ": " + msg
	}
	n := root.Content[0]
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if k, rest, ok := strings.Cut(part, "["); ok {
			key = k
			if i, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil {
				idx = i
			}
		}
		next := child(n, key)
		if next == nil {
			break
		}
		n, line = next, next.Line
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				break
			}
			n, line = n.Content[idx], n.Content[idx].Line
		}
	}
	return fmt.Sprintf("%s:%d: %s", name, line, msg)
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
