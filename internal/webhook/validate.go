// Package webhook is plexus's admission webhook. Its validating half
// refuses NetworkAttachmentDefinitions whose config plexus could not use,
// pods whose network annotations are invalid, name NADs that do not exist
// or that namespace isolation forbids, and NetworkDefinitions that could
// not be rendered. The checks are those of `plexusctl lint` (internal/lint,
// which uses pkg/netselect and pkg/nad) and of the networks controller, so
// a message names the same field everywhere. Its mutating half (Injector)
// adds to pods the device-plugin resources their networks' NADs name.
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

// NADGetter reads NetworkAttachmentDefinitions.
type NADGetter interface {
	// NADExists reports whether the NAD exists.
	NADExists(ctx context.Context, namespace, name string) (bool, error)
	// NADResourceName returns the NAD's k8s.v1.cni.cncf.io/resourceName
	// annotation ("" when it has none); found is false when the NAD does
	// not exist.
	NADResourceName(ctx context.Context, namespace, name string) (resource string, found bool, err error)
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
	// NoIPAMDefaults says the nodes' plexusd write no plexus-ipam
	// defaults (ipamDefaults false): a plexus-ipam configuration that
	// names no store could never allocate and is refused. By default it
	// is admitted, since plexusd supplies the store.
	NoIPAMDefaults bool
}

// allows reports whether namespace isolation lets a pod in namespace ns
// use sel's NAD.
func (p Policy) allows(sel netselect.Selection, ns string) bool {
	return !p.NamespaceIsolation || sel.Namespace == ns || slices.Contains(p.GlobalNamespaces, sel.Namespace)
}

// Validator checks objects. Findings are "field: message" strings; a
// warning does not refuse the object.
type Validator struct {
	NADs   NADGetter
	Policy Policy
}

// Verdict is the outcome of one check (or mutation).
type Verdict struct {
	Problems []string
	Warnings []string
	// Patch is a JSON patch (RFC 6902) to apply to the object, from the
	// mutating webhook only.
	Patch []byte
}

// NAD checks a NetworkAttachmentDefinition (JSON) in namespace ns.
func (v *Validator) NAD(obj []byte, ns string) Verdict {
	return v.findings(v.lint(obj, ns), "")
}

// Pod checks a pod's (JSON) network annotations and the NADs they name.
func (v *Validator) Pod(ctx context.Context, obj []byte, ns string) Verdict {
	rep := v.lint(obj, ns)
	out := v.findings(rep, "")
	if len(out.Problems) > 0 || len(rep.Objects) != 1 {
		return out
	}
	o := rep.Objects[0]
	field := "metadata.annotations[" + netselect.NetworksAnnotation + "]"
	for i, sel := range o.Networks {
		f := fmt.Sprintf("%s: networks[%d]", field, i)
		if !v.Policy.allows(sel, ns) {
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
	r, err := networks.Render(def.Spec)
	if err != nil {
		out.Problems = append(out.Problems, "spec: "+err.Error())
	} else {
		nadObj, _ := json.Marshal(map[string]any{"kind": "NetworkAttachmentDefinition", // strings always marshal
			"metadata": map[string]string{"name": r.Name, "namespace": r.Namespace}, "spec": map[string]string{"config": r.Config}})
		f := v.findings(v.lint(nadObj, r.Namespace), "spec: the rendered NAD "+r.Namespace+"/"+r.Name+": ")
		out.Problems, out.Warnings = append(out.Problems, f.Problems...), append(out.Warnings, f.Warnings...)
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

// findings renders lint's problems and warnings without file and line,
// each after prefix. A plexus-ipam configuration without a store is fine
// where plexusd supplies one and refused where it does not.
func (v *Validator) findings(r *lint.Report, prefix string) Verdict {
	var out Verdict
	for _, p := range r.Problems {
		msg := p.Message
		if p.Field != "" && !strings.HasPrefix(msg, p.Field) {
			msg = p.Field + ": " + msg
		}
		msg = prefix + msg
		switch {
		case p.Check == lint.CheckIPAMStore && !v.Policy.NoIPAMDefaults:
		case p.Check == lint.CheckIPAMStore:
			out.Problems = append(out.Problems, msg+"; plexusd writes no such defaults in this cluster (--webhook-ipam-node-defaults=false)")
		case p.Severity == lint.Warning:
			out.Warnings = append(out.Warnings, msg)
		default:
			out.Problems = append(out.Problems, msg)
		}
	}
	return out
}
