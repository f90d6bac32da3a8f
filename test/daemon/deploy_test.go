package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	daemonpkg "github.com/plexus-cni/plexus/internal/daemon"
	"github.com/plexus-cni/plexus/internal/testbed"
)

// deployObjects reads deploy/kustomization.yaml's resources (the CRDs are
// checked to be listed, and left alone: the test bed applied them) and
// moves every object into namespace ns, suffixing cluster-scoped names, so
// that a test owns what it applies.
func deployObjects(t *testing.T, ns, suffix string) []*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(testbed.Root(), "deploy")
	resources := kustomizeResources(t, dir)
	crds, _ := filepath.Glob(filepath.Join(dir, "crds", "*.yaml"))
	for _, crd := range crds {
		if !contains(resources, crd) {
			t.Errorf("kustomization.yaml does not list %s", crd)
		}
	}
	var objs []*unstructured.Unstructured
	for _, res := range resources {
		if strings.HasPrefix(res, filepath.Join(dir, "crds")+"/") {
			continue
		}
		for _, obj := range decodeFile(t, res) {
			relocate(obj, ns, suffix)
			objs = append(objs, obj)
		}
	}
	return objs
}

// kustomizeResources lists the files of dir's kustomization.yaml,
// following directories that hold their own kustomization.
func kustomizeResources(t *testing.T, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	var files []string
	for _, r := range k.Resources {
		path := filepath.Join(dir, r)
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			files = append(files, kustomizeResources(t, path)...)
			continue
		}
		files = append(files, path)
	}
	return files
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(f)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, obj)
	}
}

func relocate(obj *unstructured.Unstructured, ns, suffix string) {
	if obj.GetNamespace() == "kube-system" {
		obj.SetNamespace(ns)
	}
	switch obj.GetKind() {
	case "ClusterRole":
		obj.SetName(obj.GetName() + "-" + suffix)
	case "ClusterRoleBinding":
		obj.SetName(obj.GetName() + "-" + suffix)
		name, _, _ := unstructured.NestedString(obj.Object, "roleRef", "name")
		_ = unstructured.SetNestedField(obj.Object, name+"-"+suffix, "roleRef", "name")
	}
	subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["namespace"] == "kube-system" {
			m["namespace"] = ns
		}
	}
	if subjects != nil {
		_ = unstructured.SetNestedSlice(obj.Object, subjects, "subjects")
	}
}

// applyDeploy server-side applies deploy/ into a fresh namespace (the API
// server validates every object) and returns the namespace.
func applyDeploy(t *testing.T, env *testbed.Env) (string, []*unstructured.Unstructured) {
	t.Helper()
	ns := env.Namespace(t, "deploy")
	objs := deployObjects(t, ns, ns)
	docs := make([]string, 0, len(objs))
	for _, o := range objs {
		if k := o.GetKind(); k == "ValidatingWebhookConfiguration" || k == "MutatingWebhookConfiguration" {
			// Cluster-wide: on the shared test bed the validating one
			// (failing closed for NADs) would break every other test's
			// NADs, and both would be called for every other test's pods.
			// Not applied (internal/webhook registers them under names of
			// its own, limited to its namespace).
			continue
		}
		requirePrivileged(t, o)
		js, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(js))
	}
	return ns, env.ApplyYAML(t, ns, strings.Join(docs, "\n---\n"))
}

// requirePrivileged checks that the DaemonSet's containers are privileged
// (plexusd moves interfaces and runs delegates on the host).
func requirePrivileged(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	if o.GetKind() != "DaemonSet" {
		return
	}
	containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		sc, _ := c.(map[string]any)["securityContext"].(map[string]any)
		if sc["privileged"] != true {
			t.Errorf("DaemonSet %s container %v is not privileged", o.GetName(), c.(map[string]any)["name"])
		}
	}
}

// access is one permission question for a service account.
type access struct {
	ns, verb, group, resource, sub string
}

func allowed(t *testing.T, env *testbed.Env, ns, sa string, a access) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.ns, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub,
		},
	}}
	out, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return out.Status.Allowed
}

func TestDeployAppliesAndRBACIsLeast(t *testing.T) {
	env := testbed.Require(t)
	ns, applied := applyDeploy(t, env)
	kinds := map[string]bool{}
	for _, o := range applied {
		kinds[o.GetKind()+"/"+o.GetName()] = true
	}
	for _, want := range []string{"DaemonSet/plexusd", "Deployment/plexus-controller", "ServiceAccount/plexusd",
		"ServiceAccount/plexus-controller", "ConfigMap/plexusd-config"} {
		if !kinds[want] {
			t.Errorf("deploy/ has no %s (applied: %v)", want, kinds)
		}
	}
	const nads, pd = "k8s.cni.cncf.io", "plexus.dev"
	other := "default"
	check := func(sa string, want bool, list []access) {
		for _, a := range list {
			if got := allowed(t, env, ns, sa, a); got != want {
				t.Errorf("%s may %s %s/%s %s in %q: %v, want %v", sa, a.verb, a.group, a.resource, a.sub, a.ns, got, want)
			}
		}
	}
	// plexusd: every permission the code uses, next to its user.
	check("plexusd", true, []access{
		{"", "list", "", "pods", ""}, {"", "watch", "", "pods", ""}, // internal/daemon/informer: node's pods
		{other, "get", "", "pods", ""},                                                // informer cache miss; internal/kube GetPod
		{other, "patch", "", "pods", "status"},                                        // internal/kube SetNetworkStatus
		{other, "create", "", "events", ""},                                           // internal/kube RecordEvents
		{"", "list", nads, "network-attachment-definitions", ""},                      // internal/daemon/informer NADs
		{"", "watch", nads, "network-attachment-definitions", ""},                     //
		{other, "get", nads, "network-attachment-definitions", ""},                    // internal/kube NAD (cache miss)
		{ns, "get", pd, "ipallocations", ""}, {ns, "create", pd, "ipallocations", ""}, // pkg/ipam/store/kubestore
		{ns, "delete", pd, "ipallocations", ""}, {ns, "list", pd, "ipallocations", ""},
		{ns, "get", pd, "ipattachments", ""}, {ns, "create", pd, "ipattachments", ""},
		{ns, "delete", pd, "ipattachments", ""}, {ns, "list", pd, "ipattachments", ""},
		{ns, "update", pd, "ipallocations", ""}, // kubestore Transfer (sticky addresses)
		{ns, "update", pd, "ipattachments", ""}, // kubestore pointAttachment, Transfer
		{ns, "get", pd, "ipspaces", ""}, {ns, "create", pd, "ipspaces", ""}, {ns, "list", pd, "ipspaces", ""},
		{ns, "update", pd, "ipspaces", ""},     // kubestore index writes
		{ns, "watch", pd, "ipallocations", ""}, // internal/daemon/poolwatch (this node's)
	})
	check("plexusd", false, []access{
		{other, "delete", "", "pods", ""}, {other, "update", "", "pods", ""}, {other, "update", "", "pods", "status"},
		{other, "get", "", "secrets", ""}, {other, "update", "", "secrets", ""}, {"", "patch", "", "nodes", ""},
		{other, "create", nads, "network-attachment-definitions", ""},
		{other, "create", pd, "ipallocations", ""},                                // only in the IPAM namespace
		{ns, "patch", pd, "ipspaces", ""}, {ns, "patch", pd, "ipallocations", ""}, // kubestore never patches
		{other, "watch", pd, "ipspaces", ""},
		{ns, "watch", pd, "ipspaces", ""}, // each ADD rewrites one: no node watches them
		{ns, "watch", pd, "ipattachments", ""},
		{other, "delete", "", "events", ""},
	})
	// plexus-controller: what reconciliation, leader election and the
	// webhook use.
	check("plexus-controller", true, []access{
		{"", "list", pd, "networkdefinitions", ""}, {"", "watch", pd, "networkdefinitions", ""}, // networks reconciler
		{"", "patch", pd, "networkdefinitions", "status"}, // networks/sync.go status
		{"", "list", nads, "network-attachment-definitions", ""}, {"", "watch", nads, "network-attachment-definitions", ""},
		{other, "create", nads, "network-attachment-definitions", ""}, {other, "update", nads, "network-attachment-definitions", ""},
		{other, "delete", nads, "network-attachment-definitions", ""}, {other, "get", nads, "network-attachment-definitions", ""}, // webhook
		{"", "list", "", "pods", ""}, {"", "watch", "", "pods", ""}, {"", "list", "", "nodes", ""}, {"", "watch", "", "nodes", ""},
		{"", "list", "apps", "statefulsets", ""}, {"", "watch", "apps", "statefulsets", ""}, // controller/ipam: sticky reservations
		{other, "get", "apps", "statefulsets", ""}, {other, "get", "", "pods", ""}, {"", "get", "", "nodes", ""}, // controller/ipam liveWorld
		{"", "list", pd, "ipallocations", ""}, {"", "watch", pd, "ipallocations", ""}, // controller/ipam informer, sweep
		{other, "get", pd, "ipallocations", ""}, {other, "delete", pd, "ipallocations", ""}, // kubestore FreeHeld
		{other, "update", pd, "ipallocations", ""},                                          // kubestore Transfer (Reserve)
		{other, "get", pd, "ipattachments", ""}, {other, "create", pd, "ipattachments", ""}, // kubestore Transfer
		{other, "update", pd, "ipattachments", ""}, {other, "delete", pd, "ipattachments", ""}, {"", "list", pd, "ipattachments", ""},
		{other, "get", pd, "ipspaces", ""}, {"", "list", pd, "ipspaces", ""}, // kubestore Spaces, markIndex
		{other, "update", pd, "ipspaces", ""}, {other, "create", pd, "ipspaces", ""}, // kubestore markIndex, RebuildIndex
		{ns, "get", "coordination.k8s.io", "leases", ""}, {ns, "create", "coordination.k8s.io", "leases", ""}, // internal/controller
		{ns, "update", "coordination.k8s.io", "leases", ""},
		{ns, "create", "", "secrets", ""},                                       // internal/webhook certificate
		{"", "create", "apiextensions.k8s.io", "customresourcedefinitions", ""}, // internal/controller/nadcrd
	})
	check("plexus-controller", false, []access{
		{other, "delete", "", "pods", ""}, {other, "patch", "", "pods", "status"}, {other, "get", "", "secrets", ""},
		{ns, "list", "", "secrets", ""}, {"", "patch", "", "nodes", ""}, {other, "update", "coordination.k8s.io", "leases", ""},
		{other, "create", pd, "ipallocations", ""}, {"", "delete", pd, "networkdefinitions", ""},
		{other, "patch", pd, "ipspaces", ""}, {other, "update", "apps", "statefulsets", ""}, {other, "delete", "apps", "statefulsets", ""},
		{"", "create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", ""},
		{"", "create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", ""},
		{"", "delete", "apiextensions.k8s.io", "customresourcedefinitions", ""}, // nadcrd never deletes
		{"", "update", "apiextensions.k8s.io", "customresourcedefinitions", ""}, // nor overwrites
	})
	checkNamed(t, env, ns)
	checkDaemonSet(t, applied)
}

// checkNamed checks the permissions limited to one object's name.
func checkNamed(t *testing.T, env *testbed.Env, ns string) {
	t.Helper()
	for _, c := range []struct {
		a    authorizationv1.ResourceAttributes
		want bool
	}{
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: "plexus-webhook-tls"}, true},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "update", Resource: "secrets", Name: "plexus-webhook-tls"}, true},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "admissionregistration.k8s.io",
			Resource: "validatingwebhookconfigurations", Name: "plexus-webhook"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "admissionregistration.k8s.io",
			Resource: "validatingwebhookconfigurations", Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Group: "admissionregistration.k8s.io",
			Resource: "mutatingwebhookconfigurations", Name: "plexus-mutating-webhook"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "admissionregistration.k8s.io",
			Resource: "mutatingwebhookconfigurations", Name: "plexus-mutating-webhook"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "admissionregistration.k8s.io",
			Resource: "mutatingwebhookconfigurations", Name: "plexus-webhook"}, false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "system:serviceaccount:" + ns + ":plexus-controller", ResourceAttributes: &c.a}}
		out, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status.Allowed != c.want {
			t.Errorf("plexus-controller may %s %s %q: %v, want %v", c.a.Verb, c.a.Resource, c.a.Name, out.Status.Allowed, c.want)
		}
	}
}

func checkDaemonSet(t *testing.T, applied []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range applied {
		if o.GetKind() != "DaemonSet" {
			continue
		}
		spec, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		raw, _ := json.Marshal(spec)
		s := string(raw)
		for _, want := range []string{`"hostNetwork":true`, `"operator":"Exists"`,
			`"mountPath":"/etc/cni/net.d"`, `"mountPath":"/opt/cni/bin"`, `"mountPath":"/var/lib/cni"`,
			`"mountPath":"/run/plexus"`, `"limits":{"memory"`, `"fieldPath":"spec.nodeName"`, `"path":"/readyz"`} {
			if !strings.Contains(s, want) {
				t.Errorf("DaemonSet pod spec lacks %s", want)
			}
		}
		return
	}
	t.Error("no DaemonSet applied")
}

// TestDeployNamesTheImageThroughKustomization: every container says
// `plexus` and kustomization.yaml's images: alone says which image that
// is, so `kustomize edit set image plexus=<yours>` is the one change a user
// makes. Every command is a file of the image (hack/image/plexus.json,
// which the Dockerfile matches), and plexusd's directory holds the plugins
// it installs from there into the node's CNI bin dir.
func TestDeployNamesTheImageThroughKustomization(t *testing.T) {
	dir := filepath.Join(testbed.Root(), "deploy")
	var k struct {
		Images []struct{ Name, NewName, NewTag string } `json:"images"`
	}
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if len(k.Images) != 1 || k.Images[0].Name != "plexus" || k.Images[0].NewName == "" || k.Images[0].NewTag == "" {
		t.Errorf("kustomization.yaml images: %+v, want one entry name plexus with newName and newTag", k.Images)
	}
	var spec struct {
		Files []struct{ Path string } `json:"files"`
	}
	readYAML(t, filepath.Join(testbed.Root(), "hack", "image", "plexus.json"), &spec)
	inImage := map[string]bool{}
	for _, f := range spec.Files {
		inImage[f.Path] = true
	}
	commands := map[string]string{}
	for _, res := range kustomizeResources(t, dir) {
		for _, obj := range decodeFile(t, res) {
			for _, c := range podContainers(obj) {
				image, _, _ := unstructured.NestedString(c, "image")
				command, _, _ := unstructured.NestedStringSlice(c, "command")
				where := obj.GetKind() + "/" + obj.GetName()
				if image != "plexus" {
					t.Errorf("%s: image %q, want plexus (set by kustomization.yaml)", where, image)
				}
				if len(command) == 0 || !inImage[command[0]] {
					t.Errorf("%s: command %q does not start with a file of the image %v", where, command, inImage)
				} else {
					commands[obj.GetKind()] = command[0]
				}
			}
		}
	}
	plexusd, ok := commands["DaemonSet"]
	if !ok {
		t.Fatal("deploy/ has no DaemonSet running a file of the image")
	}
	for _, b := range daemonpkg.Binaries {
		if p := filepath.Join(filepath.Dir(plexusd), b); !inImage[p] {
			t.Errorf("plexusd %q installs %s from its own directory, but the image has no %s", plexusd, b, p)
		}
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// podContainers returns the containers and init containers of a workload.
func podContainers(obj *unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, field := range []string{"containers", "initContainers"} {
		list, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", field)
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}
