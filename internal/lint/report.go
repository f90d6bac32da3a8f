// Package lint checks Kubernetes manifests for plexus network selections
// without a cluster: the networks and default-network annotations of pods
// and pod templates, and the CNI configuration of NetworkAttachmentDefinitions,
// with the same parsers the plugin uses (pkg/netselect, pkg/nad). It is
// pure: input is a reader, output a Report that renders as text or JSON.
package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Report is the result of linting one or more files.
type Report struct {
	// Objects lists the checked objects (pods, workloads, NADs) in input
	// order; objects of other kinds are skipped and not listed.
	Objects []Object `json:"objects"`
	// Problems lists every invalid annotation, NAD config or document.
	Problems []Problem `json:"problems"`
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
}

// String renders p as "file:line: Kind ns/name: field: message"; a field
// that the message already starts with is not repeated.
func (p Problem) String() string {
	parts := []string{fmt.Sprintf("%s:%d", p.File, p.Line)}
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
}

// Summary returns "N objects checked, M problems".
func (r *Report) Summary() string {
	return fmt.Sprintf("%s checked, %s", plural(len(r.Objects), "object"), plural(len(r.Problems), "problem"))
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
