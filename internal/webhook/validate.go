// Package webhook is plexus's validating admission webhook. It refuses
// NetworkAttachmentDefinitions whose config plexus could not use, pods whose
// network annotations are invalid, name NADs that do not exist or that
// namespace isolation forbids, and NetworkDefinitions that could not be
// rendered. The checks are those of `plexusctl lint` (internal/lint, which
// uses pkg/netselect and pkg/nad) and of the networks controller, so a
// message names the same field everywhere.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/plexus-cni/plexus/internal/controller/networks"
	"github.com/plexus-cni/plexus/internal/lint"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// NADGetter reports whether a NetworkAttachmentDefinition exists.
type NADGetter interface {
	NADExists(ctx context.Context, namespace, name string) (bool, error)
}

// Policy is what the pod checks enforce beyond syntax.
type Policy struct {
	// NamespaceIsolation allows pods only NADs of their own namespace and
	// of GlobalNamespaces (plexus's namespaceIsolation).
	NamespaceIsolation bool
	GlobalNamespaces   []string
	// DefaultNetworkNamespace qualifies bare names in the default-network
	// annotation (plexus's multusNamespace; "" means "kube-system").
	DefaultNetworkNamespace string
}

// Validator checks objects. Findings are "field: message" strings; a
// warning does not refuse the object.
type Validator struct {
	NADs   NADGetter
	Policy Policy
}

// Verdict is the outcome of one check.
type Verdict struct {
	Problems []string
	Warnings []string
}

// NAD checks a NetworkAttachmentDefinition (JSON) in namespace ns.
func (v *Validator) NAD(obj []byte, ns string) Verdict {
	return findings(v.lint(obj, ns))
}

// Pod checks a pod's (JSON) network annotations and the NADs they name.
func (v *Validator) Pod(ctx context.Context, obj []byte, ns string) Verdict {
	rep := v.lint(obj, ns)
	out := findings(rep)
	if len(out.Problems) > 0 || len(rep.Objects) != 1 {
		return out
	}
	o := rep.Objects[0]
	field := "metadata.annotations[" + netselect.NetworksAnnotation + "]"
	for i, sel := range o.Networks {
		f := fmt.Sprintf("%s: networks[%d]", field, i)
		if v.Policy.NamespaceIsolation && sel.Namespace != ns && !slices.Contains(v.Policy.GlobalNamespaces, sel.Namespace) {
			out.Problems = append(out.Problems, fmt.Sprintf(
				"%s: network %s/%s is in another namespace than the pod and namespaceIsolation allows only %q and the global namespaces %v",
				f, sel.Namespace, sel.Name, ns, v.Policy.GlobalNamespaces))
			continue
		}
		v.exists(ctx, &out, f, sel)
	}
	if o.DefaultNetwork != nil {
		v.exists(ctx, &out, "metadata.annotations["+netselect.DefaultNetworkAnnotation+"]", *o.DefaultNetwork)
	}
	return out
}

// exists refuses a selection whose NAD is missing; when the API cannot
// answer, the pod is admitted with a warning (the plugin checks again at
// ADD time).
func (v *Validator) exists(ctx context.Context, out *Verdict, field string, sel netselect.Selection) {
	ok, err := v.NADs.NADExists(ctx, sel.Namespace, sel.Name)
	switch {
	case err != nil:
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s: cannot check NetworkAttachmentDefinition %s/%s: %v", field, sel.Namespace, sel.Name, err))
	case !ok:
		out.Problems = append(out.Problems, fmt.Sprintf("%s: NetworkAttachmentDefinition %s/%s not found", field, sel.Namespace, sel.Name))
	}
}

// NetworkDefinition checks that a NetworkDefinition (JSON) renders.
func (v *Validator) NetworkDefinition(obj []byte) Verdict {
	var def v1.NetworkDefinition
	if err := json.Unmarshal(obj, &def); err != nil {
		return Verdict{Problems: []string{"spec: cannot decode: " + err.Error()}}
	}
	var out Verdict
	if _, err := networks.Render(def.Spec); err != nil {
		out.Problems = append(out.Problems, "spec: "+err.Error())
	}
	c := def.Spec.DeepCopy()
	for _, n := range networks.Canonicalize(c) {
		out.Warnings = append(out.Warnings, "spec."+n)
	}
	return out
}

func (v *Validator) lint(obj []byte, ns string) *lint.Report {
	rep, _ := lint.Lint(bytes.NewReader(obj), "", lint.Options{Namespace: ns, DefaultNetworkNamespace: v.Policy.DefaultNetworkNamespace})
	return rep // reading from memory cannot fail
}

// findings renders lint's problems and warnings without file and line.
func findings(r *lint.Report) Verdict {
	var out Verdict
	for _, p := range r.Problems {
		msg := p.Message
		if p.Field != "" && !strings.HasPrefix(msg, p.Field) {
			msg = p.Field + ": " + msg
		}
		if p.Severity == lint.Warning {
			out.Warnings = append(out.Warnings, msg)
		} else {
			out.Problems = append(out.Problems, msg)
		}
	}
	return out
}
