// Package lint checks Kubernetes manifests for plexus network selections
// without a cluster: the networks and default-network annotations of pods
// and pod templates, and the CNI configuration of NetworkAttachmentDefinitions,
// with the same parsers the plugin uses (pkg/netselect, pkg/nad); then,
// across all the files, Report.CheckReferences runs the plugin's planner
// (internal/plan) on every pod against the NADs given. It is pure: input
// is a reader, output a Report that renders as text or JSON.
package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Report is the result of linting one or more files.
type Report struct {
	// Objects lists the checked objects (pods, workloads, NADs) in input
	// order; objects of other kinds are skipped and not listed.
	Objects []Object `json:"objects"`
	// Problems lists every invalid annotation, NAD config or document,
	// and the warnings.
	Problems []Problem `json:"problems"`

	// files are the files read, in order (for sorting problems).
	files []string
}

// Object is one checked object and what was parsed from it.
type Object struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Networks are the selections of the (template's) networks annotation.
	Networks []netselect.Selection `json:"networks,omitempty"`
	// DefaultNetwork is the parsed default-network annotation.
	DefaultNetwork *netselect.Selection `json:"defaultNetwork,omitempty"`
	// NAD describes a NetworkAttachmentDefinition's parsed config.
	NAD *NADInfo `json:"nad,omitempty"`

	// request is what CheckReferences plans (pods and templates whose
	// networks annotation parsed); delegate is a NAD's parsed config.
	request  *podRequest
	delegate *nad.Delegate
}

// NADInfo is what a NetworkAttachmentDefinition's config declares.
type NADInfo struct {
	// NetworkName is the CNI network name (injected from the NAD name when
	// the config has none).
	NetworkName  string   `json:"networkName,omitempty"`
	CNIVersion   string   `json:"cniVersion,omitempty"`
	Types        []string `json:"types,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	// ConfigFromDisk is set when spec.config is empty: the node's CNI
	// configuration directory provides the config, which lint cannot see.
	ConfigFromDisk bool `json:"configFromDisk,omitempty"`
}

// Problem is one finding.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Object is "Kind namespace/name", empty for document-level problems.
	Object string `json:"object,omitempty"`
	// Field is where the offending value sits in the object, e.g.
	// "spec.template.metadata.annotations[k8s.v1.cni.cncf.io/networks]".
	Field string `json:"field,omitempty"`
	// Message is the validation error.
	Message string `json:"message"`
	// Severity is "warning" for what the plugin accepts but is likely a
	// mistake; empty for errors.
	Severity string `json:"severity,omitempty"`
	// Check names the check of a warning that callers treat apart
	// (CheckIPAMStore).
	Check string `json:"check,omitempty"`
}

// Warning is the Severity of warnings.
const Warning = "warning"

// String renders p as "file:line: Kind ns/name: field: message"; a field
// that the message already starts with is not repeated.
func (p Problem) String() string {
	parts := []string{fmt.Sprintf("%s:%d", p.File, p.Line)}
	if p.Severity != "" {
		parts = append(parts, p.Severity)
	}
	if p.Object != "" {
		parts = append(parts, p.Object)
	}
	if p.Field != "" && !strings.HasPrefix(p.Message, p.Field) {
		parts = append(parts, p.Field)
	}
	return strings.Join(append(parts, p.Message), ": ")
}

// Merge appends other's objects and problems to r.
func (r *Report) Merge(other *Report) {
	r.Objects = append(r.Objects, other.Objects...)
	r.Problems = append(r.Problems, other.Problems...)
	r.files = append(r.files, other.files...)
}

// Errors counts the problems that are not warnings.
func (r *Report) Errors() int {
	n := 0
	for _, p := range r.Problems {
		if p.Severity != Warning {
			n++
		}
	}
	return n
}

// Summary returns "N objects checked, M problems", and ", K warnings"
// when there are any.
func (r *Report) Summary() string {
	s := fmt.Sprintf("%s checked, %s", plural(len(r.Objects), "object"), plural(r.Errors(), "problem"))
	if w := len(r.Problems) - r.Errors(); w > 0 {
		s += ", " + plural(w, "warning")
	}
	return s
}

// sortProblems orders the problems by file (in reading order), then line.
func (r *Report) sortProblems() {
	rank := map[string]int{}
	for i, f := range r.files {
		if _, seen := rank[f]; !seen {
			rank[f] = i
		}
	}
	slices.SortStableFunc(r.Problems, func(a, b Problem) int {
		if c := rank[a.File] - rank[b.File]; c != 0 {
			return c
		}
		return a.Line - b.Line
	})
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// WriteText writes one line per problem and the summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.String() + "\n")
	}
	b.WriteString(r.Summary() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	out := struct {
		Objects  []Object  `json:"objects"`
		Problems []Problem `json:"problems"`
		Summary  string    `json:"summary"`
	}{nonNil(r.Objects), nonNil(r.Problems), r.Summary()}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
