package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Injector is the mutating half of the webhook: it gives a pod the
// device-plugin resources its networks need, as network-resources-injector
// does for Multus. Each attachment (an element of the networks annotation,
// or the default-network annotation) whose NAD carries
// k8s.v1.cni.cncf.io/resourceName counts one of that resource; the pod's
// first container requests and is limited to the count. A resource that
// any container (init containers included) already requests or limits is
// the user's choice and is left alone, and so is a pod with DRA resource
// claims: it gets its network devices through them, and an extended
// resource that no device plugin offers would keep it from being
// scheduled. It never refuses a pod: when it
// cannot decide, it adds nothing and warns, and the plugin reports a
// missing device at ADD time.
type Injector struct {
	NADs NADGetter
	// Policy supplies the default-network namespace and namespace
	// isolation: a NAD the validator refuses injects nothing.
	Policy Policy
	Log    *slog.Logger
}

// Pod returns the JSON patch (in Verdict.Patch) adding the resources of
// pod (JSON) in namespace ns; a pod needing nothing gets no patch.
func (in *Injector) Pod(ctx context.Context, obj []byte, ns string) Verdict {
	var pod podView
	if err := json.Unmarshal(obj, &pod); err != nil {
		return in.warn(ns, fmt.Errorf("cannot decode the pod: %w", err))
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		return Verdict{}
	}
	sels, err := in.attachments(pod.Metadata.Annotations, ns)
	if err != nil {
		return in.warn(ns, err)
	}
	want, err := in.count(ctx, sels, ns)
	if err != nil {
		return in.warn(ns, err)
	}
	ops := resourcePatch(&pod, want)
	if len(ops) == 0 {
		return Verdict{}
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return in.warn(ns, err)
	}
	return Verdict{Patch: patch}
}

// warn is the verdict of an injection that could not be decided for a
// pod in namespace ns: no patch, and a warning for the user and the log.
func (in *Injector) warn(ns string, err error) Verdict {
	msg := "plexus: no network device resources added: " + err.Error()
	in.Log.Warn("resource injection skipped", "namespace", ns, "error", err)
	return Verdict{Warnings: []string{msg}}
}

// attachments parses the pod's networks and default-network annotations,
// in that order, leaving out selections namespace isolation forbids.
func (in *Injector) attachments(ann map[string]string, ns string) ([]netselect.Selection, error) {
	sels, err := netselect.ParseNetworks(ann[netselect.NetworksAnnotation], ns)
	if err != nil {
		return nil, fmt.Errorf("metadata.annotations[%s]: %w", netselect.NetworksAnnotation, err)
	}
	sels = slices.DeleteFunc(sels, func(s netselect.Selection) bool { return !in.Policy.allows(s, ns) })
	defNS := in.Policy.DefaultNetworkNamespace
	if defNS == "" {
		defNS = "kube-system"
	}
	def, err := netselect.ParseDefaultNetwork(ann[netselect.DefaultNetworkAnnotation], defNS)
	if err != nil {
		return nil, fmt.Errorf("metadata.annotations[%s]: %w", netselect.DefaultNetworkAnnotation, err)
	}
	if def != nil {
		sels = append(sels, *def)
	}
	return sels, nil
}

// count returns, per resource name, how many of sels use a NAD with that
// resource. Each NAD is read once; a missing NAD counts nothing (the
// validator or the plugin reports it); any other lookup error fails the
// whole count, since a partial count would be a wrong one.
func (in *Injector) count(ctx context.Context, sels []netselect.Selection, ns string) (map[string]int, error) {
	want := map[string]int{}
	seen := map[string]string{}
	for _, s := range sels {
		key := s.Namespace + "/" + s.Name
		res, ok := seen[key]
		if !ok {
			r, found, err := in.NADs.NADResourceName(ctx, s.Namespace, s.Name)
			if err != nil {
				return nil, fmt.Errorf("NetworkAttachmentDefinition %s: %w", key, err)
			}
			if !found {
				in.Log.Debug("resource injection: NAD not found", "namespace", ns, "nad", key)
			}
			res, seen[key] = r, r
		}
		if res != "" {
			want[res]++
		}
	}
	return want, nil
}

// podView is the part of a pod the injector reads. Pointers and nil maps
// tell an absent field from an empty one, which the patch must know.
type podView struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		InitContainers []containerView   `json:"initContainers"`
		Containers     []containerView   `json:"containers"`
		ResourceClaims []json.RawMessage `json:"resourceClaims"`
	} `json:"spec"`
}

// containerView is the part of a container the injector reads.
type containerView struct {
	Resources *resourcesView `json:"resources"`
}

// resourcesView holds a container's requests and limits (nil: absent).
type resourcesView struct {
	Requests map[string]json.RawMessage `json:"requests"`
	Limits   map[string]json.RawMessage `json:"limits"`
}

// patchOp is one RFC 6902 JSON patch operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// firstResources is the JSON pointer of the first container's resources.
const firstResources = "/spec/containers/0/resources"

// resourcePatch returns the operations that give pod's first container
// requests and limits of want's resources, leaving out those any
// container already requests or limits; nil when there is nothing to
// add (or no container to add it to). Operations are in resource-name
// order.
func resourcePatch(pod *podView, want map[string]int) []patchOp {
	add := missing(pod, want)
	if len(add) == 0 || len(pod.Spec.Containers) == 0 {
		return nil
	}
	res := pod.Spec.Containers[0].Resources
	if res == nil {
		return []patchOp{{Op: "add", Path: firstResources, Value: map[string]map[string]string{"requests": add, "limits": add}}}
	}
	ops := mapPatch(res.Requests, firstResources+"/requests", add)
	return append(ops, mapPatch(res.Limits, firstResources+"/limits", add)...)
}

// missing returns want's resources, as quantities, that no container of
// pod requests or limits.
func missing(pod *podView, want map[string]int) map[string]string {
	add := map[string]string{}
	for name, n := range want {
		if n > 0 && !setAnywhere(pod, name) {
			add[name] = strconv.Itoa(n)
		}
	}
	return add
}

// setAnywhere reports whether any container of pod requests or limits
// resource name.
func setAnywhere(pod *podView, name string) bool {
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Resources == nil {
			continue
		}
		_, req := c.Resources.Requests[name]
		_, lim := c.Resources.Limits[name]
		if req || lim {
			return true
		}
	}
	return false
}

// mapPatch adds add's entries to the map at path: the whole map when it
// is absent (or null), else one operation per entry.
func mapPatch(existing map[string]json.RawMessage, path string, add map[string]string) []patchOp {
	if existing == nil {
		return []patchOp{{Op: "add", Path: path, Value: add}}
	}
	var ops []patchOp
	for _, name := range slices.Sorted(maps.Keys(add)) {
		ops = append(ops, patchOp{Op: "add", Path: path + "/" + escapePointer(name), Value: add[name]})
	}
	return ops
}

// escapePointer escapes a JSON pointer reference token (RFC 6901): "~"
// becomes "~0" and "/" becomes "~1".
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
