package lint

import (
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/plexus-cni/plexus/pkg/nad"
)

// Options tune Lint.
type Options struct {
	// Namespace is used for objects without metadata.namespace
	// ("" means "default").
	Namespace string
	// DefaultNetworkNamespace qualifies bare default-network names, like
	// Multus's multusNamespace ("" means "kube-system").
	DefaultNetworkNamespace string
}

// templatePaths maps workload kinds to the path of their pod template.
var templatePaths = map[string][]string{
	"Pod":                   nil,
	"PodTemplate":           {"template"},
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"DeploymentConfig":      {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
}

// linter accumulates the report of one file.
type linter struct {
	file   string
	opts   Options
	report Report
}

// Lint checks every document of a YAML (or JSON) stream. filename labels
// the findings. The error is only for a failing reader; invalid input
// becomes problems in the report.
func Lint(r io.Reader, filename string, opts Options) (*Report, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filename, err)
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.DefaultNetworkNamespace == "" {
		opts.DefaultNetworkNamespace = "kube-system"
	}
	l := &linter{file: filename, opts: opts}
	l.report.files = []string{filename}
	for _, doc := range splitDocuments(string(b)) {
		l.document(doc)
	}
	l.report.sortProblems()
	return &l.report, nil
}

func (l *linter) document(doc document) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc.text), &root); err != nil {
		line, msg := yamlErrorAt(err)
		l.problem(Problem{Line: doc.firstLine + max(line, 1) - 1, Message: "invalid YAML: " + msg})
		return
	}
	if len(root.Content) == 0 {
		return
	}
	top := resolve(root.Content[0])
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return
	}
	offset := doc.firstLine - 1
	if top.Kind != yaml.MappingNode {
		l.problem(Problem{Line: top.Line + offset, Message: "document is not a Kubernetes object (a mapping)"})
		return
	}
	l.object(top, offset)
}

func (l *linter) problem(p Problem) {
	p.File = l.file
	l.report.Problems = append(l.report.Problems, p)
}

// object dispatches on the object's kind; List kinds recurse into items.
func (l *linter) object(n *yaml.Node, offset int) {
	kind := scalar(child(n, "kind"))
	if items := child(n, "items"); strings.HasSuffix(kind, "List") && items != nil && items.Kind == yaml.SequenceNode {
		for _, item := range items.Content {
			if item = resolve(item); item.Kind == yaml.MappingNode {
				l.object(item, offset)
			}
		}
		return
	}
	tmpl, isWorkload := templatePaths[kind]
	if !isWorkload && kind != nad.Kind {
		return
	}
	obj := Object{
		File: l.file, Line: n.Line + offset, Kind: kind,
		Namespace: scalar(path(n, "metadata", "namespace")),
		Name:      scalar(path(n, "metadata", "name")),
	}
	if obj.Namespace == "" {
		obj.Namespace = l.opts.Namespace
	}
	if kind == nad.Kind {
		obj.NAD = l.nad(n, &obj, offset)
	} else {
		l.annotations(n, tmpl, &obj, offset)
	}
	l.report.Objects = append(l.report.Objects, obj)
}

func objectLabel(o *Object) string {
	name := o.Name
	if name == "" {
		name = "<unnamed>"
	}
	return o.Kind + " " + o.Namespace + "/" + name
}
