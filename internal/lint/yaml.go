package lint

import (
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// document is one YAML document of a stream and the line it starts on.
type document struct {
	text      string
	firstLine int
}

// splitDocuments cuts a YAML stream at "---" lines, so that a document that
// does not parse does not hide the ones after it.
func splitDocuments(text string) []document {
	lines := strings.SplitAfter(text, "\n")
	var docs []document
	cur := document{firstLine: 1}
	var b strings.Builder
	for i, l := range lines {
		if isDocumentStart(l) && b.Len() > 0 {
			docs = append(docs, document{text: b.String(), firstLine: cur.firstLine})
			b.Reset()
			cur.firstLine = i + 1
		}
		b.WriteString(l)
	}
	if b.Len() > 0 {
		docs = append(docs, document{text: b.String(), firstLine: cur.firstLine})
	}
	return docs
}

func isDocumentStart(line string) bool {
	l := strings.TrimRight(line, "\r\n")
	return l == "---" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "---\t")
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlErrorAt splits a YAML parser error into a line (relative to the
// document) and a message; line is 0 when the error names none.
func yamlErrorAt(err error) (line int, msg string) {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, strings.TrimPrefix(err.Error(), "yaml: ")
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// child returns the value of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// keyNode returns the key node of key in mapping n, or nil.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// path follows keys from n.
func path(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = child(n, k)
	}
	return n
}

// scalar returns the value of a scalar node, or "".
func scalar(n *yaml.Node) string {
	if n = resolve(n); n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// stringValue returns the value of a node that Kubernetes decodes as a
// string; ok is false for mappings, sequences, numbers and booleans.
func stringValue(n *yaml.Node) (string, bool) {
	if n = resolve(n); n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch n.Tag {
	case "!!str", "!!binary":
		return n.Value, true
	case "!!null":
		return "", true
	}
	return "", false
}
