package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The repository root, from this module's directory (hack/chart).
var root = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

// object is one parsed Kubernetes object, as JSON decodes it.
type object = map[string]any

// helmLabels are the labels the chart adds by Helm's convention on every
// object's metadata (never on selectors or pod templates); deploy/ has
// none of them, so the comparison with deploy/ removes them.
var helmLabels = []string{"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"}

// The chart with default values, installed in kube-system (deploy/'s
// namespace), is `kubectl kustomize deploy/`: the same objects, field by
// field, once parsed. Normalised on the chart's side only: the Helm labels
// above are removed. Normalised on both sides: a ConfigMap's *.json data
// (plexusd.json) is compared parsed, because the chart writes it from values
// (keys sorted) and deploy/ by hand. Comments and key order do not count.
func TestDefaultsAreDeploy(t *testing.T) {
	kubectl := requireKubectl(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", filepath.Join(root, "deploy"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/: %v: %s", err, stderr.Bytes())
	}
	got := render(t, nil)

	wantObjs := index(t, parse(t, want))
	gotObjs := index(t, parse(t, got))
	for id, o := range gotObjs {
		unlabel(o)
		gotObjs[id] = o
	}
	for id := range wantObjs {
		if _, ok := gotObjs[id]; !ok {
			t.Errorf("deploy/ has %s, the chart does not", id)
		}
	}
	for id := range gotObjs {
		if _, ok := wantObjs[id]; !ok {
			t.Errorf("the chart has %s, deploy/ does not", id)
		}
	}
	for id, w := range wantObjs {
		if g, ok := gotObjs[id]; ok {
			if d := cmp.Diff(w, g); d != "" {
				t.Errorf("%s differs (-deploy/ +chart):\n%s", id, d)
			}
		}
	}
	if len(wantObjs) < 20 {
		t.Errorf("deploy/ renders only %d objects: is this the right directory?", len(wantObjs))
	}
}

// The chart's CRDs are deploy/'s, byte for byte: `make chart-crds` copies
// deploy/crds/*.plexus.dev.yaml into charts/plexus/crds/ whenever they
// change (after `controller-gen`, say). The NAD CRD (deploy/crds/nad) is
// not installed by deploy/ and is not in the chart either.
func TestCRDsAreDeploys(t *testing.T) {
	deployCRDs, err := filepath.Glob(filepath.Join(root, "deploy", "crds", "*.plexus.dev.yaml"))
	if err != nil || len(deployCRDs) == 0 {
		t.Fatalf("no deploy/crds/*.plexus.dev.yaml: %v", err)
	}
	chartCRDs, err := filepath.Glob(filepath.Join(root, "charts", "plexus", "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if d := cmp.Diff(names(deployCRDs), names(chartCRDs)); d != "" {
		t.Errorf("charts/plexus/crds/ does not hold deploy/crds/*.plexus.dev.yaml (-deploy +chart); run `make chart-crds`:\n%s", d)
	}
	for _, p := range deployCRDs {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "charts", "plexus", "crds", filepath.Base(p)))
		if err != nil {
			continue // reported above
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/plexus/crds/%s differs from deploy/crds/%[1]s; run `make chart-crds`", filepath.Base(p))
		}
	}
}

// Values other than the defaults render what they say.
func TestValues(t *testing.T) {
	t.Run("image", func(t *testing.T) {
		objs := index(t, parse(t, render(t, map[string]any{"image": map[string]any{
			"repository": "registry.example/plexus", "tag": "v1.2.3", "pullPolicy": "IfNotPresent",
		}})))
		for _, id := range []string{"apps/v1 DaemonSet kube-system/plexusd", "apps/v1 Deployment kube-system/plexus-controller"} {
			c := container(t, objs, id)
			if c["image"] != "registry.example/plexus:v1.2.3" || c["imagePullPolicy"] != "IfNotPresent" {
				t.Errorf("%s: image %v, pull policy %v", id, c["image"], c["imagePullPolicy"])
			}
		}
		objs = index(t, parse(t, render(t, map[string]any{"image": map[string]any{"digest": "sha256:0123"}})))
		if c := container(t, objs, "apps/v1 DaemonSet kube-system/plexusd"); c["image"] != "ghcr.io/plexus-cni/plexus@sha256:0123" {
			t.Errorf("with a digest, image %v", c["image"])
		}
	})

	t.Run("nodeSelector and tolerations", func(t *testing.T) {
		sel := map[string]any{"plexus.dev/network": "true"}
		tol := []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "net", "effect": "NoSchedule"}}
		objs := index(t, parse(t, render(t, map[string]any{
			"plexusd":    map[string]any{"nodeSelector": sel, "tolerations": tol},
			"controller": map[string]any{"nodeSelector": sel, "tolerations": tol},
		})))
		for _, id := range []string{"apps/v1 DaemonSet kube-system/plexusd", "apps/v1 Deployment kube-system/plexus-controller"} {
			spec := podSpec(t, objs, id)
			if d := cmp.Diff(sel, spec["nodeSelector"]); d != "" {
				t.Errorf("%s nodeSelector (-want +got):\n%s", id, d)
			}
			if d := cmp.Diff(tol, spec["tolerations"]); d != "" {
				t.Errorf("%s tolerations (-want +got):\n%s", id, d)
			}
		}
	})

	// Helm merges maps of values: the default limits stay unless set to
	// null (--set plexusd.resources.limits=null).
	t.Run("resources", func(t *testing.T) {
		res := map[string]any{"requests": map[string]any{"cpu": "1", "memory": "1Gi"}, "limits": nil}
		objs := index(t, parse(t, render(t, map[string]any{
			"plexusd": map[string]any{"resources": res}, "controller": map[string]any{"resources": res},
		})))
		delete(res, "limits")
		for _, id := range []string{"apps/v1 DaemonSet kube-system/plexusd", "apps/v1 Deployment kube-system/plexus-controller"} {
			if d := cmp.Diff(res, container(t, objs, id)["resources"]); d != "" {
				t.Errorf("%s resources (-want +got):\n%s", id, d)
			}
		}
	})

	t.Run("webhook disabled", func(t *testing.T) {
		objs := index(t, parse(t, render(t, map[string]any{"webhook": map[string]any{"enabled": false}})))
		for id := range objs {
			if strings.Contains(id, "WebhookConfiguration") || strings.HasSuffix(id, "Service kube-system/plexus-webhook") {
				t.Errorf("webhook disabled, and the chart still renders %s", id)
			}
		}
		c := container(t, objs, "apps/v1 Deployment kube-system/plexus-controller")
		args := strs(c["args"])
		for _, want := range []string{"--webhook-address=", "--webhook-configuration=", "--webhook-mutating-configuration="} {
			if !slices.Contains(args, want) {
				t.Errorf("controller args %q lack %s", args, want)
			}
		}
		probe := c["readinessProbe"].(object)["httpGet"].(object)
		if probe["port"] != "metrics" || probe["scheme"] != nil {
			t.Errorf("webhook disabled, readiness probe %v (want the metrics port's /healthz)", probe)
		}
		role := objs["rbac.authorization.k8s.io/v1 Role kube-system/plexus-controller"]
		if b, _ := json.Marshal(role); bytes.Contains(b, []byte("secrets")) {
			t.Errorf("webhook disabled, the controller's Role still grants secrets: %s", b)
		}
	})

	t.Run("mutating webhook disabled", func(t *testing.T) {
		objs := index(t, parse(t, render(t, map[string]any{"webhook": map[string]any{"mutating": map[string]any{"enabled": false}}})))
		if _, ok := objs["admissionregistration.k8s.io/v1 MutatingWebhookConfiguration /plexus-mutating-webhook"]; ok {
			t.Error("mutating webhook disabled, and the chart still renders it")
		}
		if _, ok := objs["admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration /plexus-webhook"]; !ok {
			t.Error("mutating webhook disabled, and the validating one is gone too")
		}
		args := strs(container(t, objs, "apps/v1 Deployment kube-system/plexus-controller")["args"])
		if !slices.Contains(args, "--webhook-mutating-configuration=") {
			t.Errorf("controller args %q", args)
		}
	})

	t.Run("controller options", func(t *testing.T) {
		objs := index(t, parse(t, render(t, map[string]any{
			"controller": map[string]any{
				"logLevel": "debug", "ensureNadCrd": false, "replicas": 3,
				"ipam": map[string]any{"grace": "5m", "workers": 4},
			},
			"webhook": map[string]any{"namespaceIsolation": true, "globalNamespaces": []any{"default", "shared"}},
			"plexusd": map[string]any{"config": map[string]any{"ipamDefaults": false}},
		})))
		d := objs["apps/v1 Deployment kube-system/plexus-controller"]
		if r := d["spec"].(object)["replicas"]; r != 3.0 {
			t.Errorf("replicas %v", r)
		}
		want := []string{"--log-level=debug", "--ensure-nad-crd=false", "--ipam-grace=5m", "--ipam-workers=4",
			"--webhook-namespace-isolation", "--webhook-global-namespaces=default,shared", "--webhook-ipam-node-defaults=false"}
		if d := cmp.Diff(want, strs(container(t, objs, "apps/v1 Deployment kube-system/plexus-controller")["args"])); d != "" {
			t.Errorf("controller args (-want +got):\n%s", d)
		}
		if b, _ := json.Marshal(objs["rbac.authorization.k8s.io/v1 ClusterRole /plexus-controller"]); bytes.Contains(b, []byte("customresourcedefinitions")) {
			t.Errorf("ensureNadCrd=false, and the ClusterRole still creates CRDs: %s", b)
		}
	})

	t.Run("plexusd options", func(t *testing.T) {
		objs := index(t, parse(t, render(t, map[string]any{"plexusd": map[string]any{
			"config":      map[string]any{"confDir": "/etc/cni/custom.d", "logLevel": "debug"},
			"extraConfig": map[string]any{"pprof": true},
			"metricsPort": 9800,
		}})))
		cm := objs["v1 ConfigMap kube-system/plexusd-config"]
		cfg := cm["data"].(object)["plexusd.json"].(object)
		if cfg["confDir"] != "/etc/cni/custom.d" || cfg["logLevel"] != "debug" || cfg["pprof"] != true ||
			cfg["metricsAddress"] != ":9800" || cfg["binDir"] != "/opt/cni/bin" {
			t.Errorf("plexusd.json %v", cfg)
		}
		spec := podSpec(t, objs, "apps/v1 DaemonSet kube-system/plexusd")
		if b, _ := json.Marshal(spec["volumes"]); !bytes.Contains(b, []byte(`"path":"/etc/cni/custom.d"`)) {
			t.Errorf("confDir is not mounted from the host: %s", b)
		}
		c := container(t, objs, "apps/v1 DaemonSet kube-system/plexusd")
		if b, _ := json.Marshal(c["ports"]); !bytes.Contains(b, []byte(`"hostPort":9800`)) {
			t.Errorf("ports %s", b)
		}
		svc := objs["v1 Service kube-system/plexusd-metrics"]
		if b, _ := json.Marshal(svc); !bytes.Contains(b, []byte(`"port":9800`)) {
			t.Errorf("metrics Service %s", b)
		}
	})

	t.Run("ipamNamespace", func(t *testing.T) {
		objs := index(t, parse(t, render(t, map[string]any{"ipamNamespace": "ipam"})))
		if _, ok := objs["rbac.authorization.k8s.io/v1 RoleBinding ipam/plexus-ipam"]; !ok {
			t.Errorf("no plexus-ipam RoleBinding in ipam: %v", keys(objs))
		}
		cfg := objs["v1 ConfigMap kube-system/plexusd-config"]["data"].(object)["plexusd.json"].(object)
		if cfg["ipamNamespace"] != "ipam" {
			t.Errorf("plexusd.json ipamNamespace %v", cfg["ipamNamespace"])
		}
		args := strs(container(t, objs, "apps/v1 Deployment kube-system/plexus-controller")["args"])
		if !slices.Contains(args, "--ipam-namespaces=ipam") {
			t.Errorf("controller args %q lack --ipam-namespaces=ipam", args)
		}
	})

	t.Run("another namespace", func(t *testing.T) {
		out, err := Render(Options{Chart: filepath.Join(root, "charts", "plexus"), Name: "plexus", Namespace: "plexus-system"})
		if err != nil {
			t.Fatal(err)
		}
		objs := index(t, parse(t, out))
		if _, ok := objs["apps/v1 DaemonSet plexus-system/plexusd"]; !ok {
			t.Fatalf("no DaemonSet in plexus-system: %v", keys(objs))
		}
		// plexus-ipam's objects stay in ipamNamespace (kube-system).
		if _, ok := objs["rbac.authorization.k8s.io/v1 Role kube-system/plexus-ipam"]; !ok {
			t.Errorf("the plexus-ipam Role left kube-system: %v", keys(objs))
		}
		args := strs(container(t, objs, "apps/v1 Deployment plexus-system/plexus-controller")["args"])
		if !slices.Contains(args, "--ipam-namespaces=kube-system") {
			t.Errorf("controller args %q lack --ipam-namespaces=kube-system", args)
		}
		vwc := objs["admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration /plexus-webhook"]
		if b, _ := json.Marshal(vwc); bytes.Contains(b, []byte("kube-system")) || !bytes.Contains(b, []byte(`"namespace":"plexus-system"`)) {
			t.Errorf("webhook configuration does not point at plexus-system: %s", b)
		}
	})
}

// render renders the chart as `helm template plexus charts/plexus -n
// kube-system --include-crds` with values.
func render(t *testing.T, values map[string]any) []byte {
	t.Helper()
	out, err := Render(Options{
		Chart: filepath.Join(root, "charts", "plexus"), Name: "plexus", Namespace: "kube-system",
		Values: values, CRDs: true,
	})
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	strict(t, out)
	return out
}

// typed are the Go types of the kinds the chart renders.
var typed = map[string]func() any{
	"apiextensions.k8s.io/v1 CustomResourceDefinition": func() any { return &apiextv1.CustomResourceDefinition{} },
	"v1 ConfigMap":                                    func() any { return &corev1.ConfigMap{} },
	"v1 Service":                                      func() any { return &corev1.Service{} },
	"v1 ServiceAccount":                               func() any { return &corev1.ServiceAccount{} },
	"apps/v1 DaemonSet":                               func() any { return &appsv1.DaemonSet{} },
	"apps/v1 Deployment":                              func() any { return &appsv1.Deployment{} },
	"policy/v1 PodDisruptionBudget":                   func() any { return &policyv1.PodDisruptionBudget{} },
	"rbac.authorization.k8s.io/v1 ClusterRole":        func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1 ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
	"rbac.authorization.k8s.io/v1 Role":               func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1 RoleBinding":        func() any { return &rbacv1.RoleBinding{} },
	"admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration": func() any { return &admissionv1.ValidatingWebhookConfiguration{} },
	"admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":   func() any { return &admissionv1.MutatingWebhookConfiguration{} },
}

// strict decodes every rendered object into its Go type, refusing unknown
// fields and wrong types: a misspelt field on a path the comparison with
// deploy/ does not take (values other than the defaults) fails here.
func strict(t *testing.T, stream []byte) {
	t.Helper()
	for _, doc := range splitDocs(stream) {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("parsing %q: %v", doc, err)
		}
		if string(j) == "null" {
			continue
		}
		var tm struct{ APIVersion, Kind string }
		if err := json.Unmarshal(j, &tm); err != nil {
			t.Fatal(err)
		}
		newObj, ok := typed[tm.APIVersion+" "+tm.Kind]
		if !ok {
			t.Errorf("the chart renders a %s %s, a kind this test does not know", tm.APIVersion, tm.Kind)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(newObj()); err != nil {
			t.Errorf("%s %s: %v in\n%s", tm.APIVersion, tm.Kind, err, doc)
		}
	}
}

// parse splits a YAML stream into objects; a ConfigMap's data keys ending
// in .json are parsed too.
func parse(t *testing.T, stream []byte) []object {
	t.Helper()
	var out []object
	for _, doc := range splitDocs(stream) {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("parsing %q: %v", doc, err)
		}
		if o == nil {
			continue // comments only
		}
		if o["kind"] == "ConfigMap" {
			data, _ := o["data"].(object)
			for k, v := range data {
				if s, ok := v.(string); ok && strings.HasSuffix(k, ".json") {
					var j any
					if err := json.Unmarshal([]byte(s), &j); err != nil {
						t.Fatalf("ConfigMap %v: %s: %v", o["metadata"], k, err)
					}
					data[k] = j
				}
			}
		}
		out = append(out, o)
	}
	return out
}

// splitDocs splits a YAML stream at its "---" lines.
func splitDocs(stream []byte) []string {
	var docs []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(string(stream), "\n") {
		if strings.TrimRight(line, " \r\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

// index keys objects by "apiVersion kind namespace/name"; a duplicate fails t.
func index(t *testing.T, objs []object) map[string]object {
	t.Helper()
	m := map[string]object{}
	for _, o := range objs {
		meta, _ := o["metadata"].(object)
		id := fmt.Sprintf("%v %v %v/%v", o["apiVersion"], o["kind"], str(meta["namespace"]), meta["name"])
		if _, dup := m[id]; dup {
			t.Fatalf("%s twice", id)
		}
		m[id] = o
	}
	return m
}

// unlabel removes helmLabels from an object's metadata.
func unlabel(o object) {
	meta, _ := o["metadata"].(object)
	labels, _ := meta["labels"].(object)
	for _, l := range helmLabels {
		delete(labels, l)
	}
}

func podSpec(t *testing.T, objs map[string]object, id string) object {
	t.Helper()
	o, ok := objs[id]
	if !ok {
		t.Fatalf("no %s in %v", id, keys(objs))
	}
	return o["spec"].(object)["template"].(object)["spec"].(object)
}

func container(t *testing.T, objs map[string]object, id string) object {
	t.Helper()
	return podSpec(t, objs, id)["containers"].([]any)[0].(object)
}

func keys(m map[string]object) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, s := range l {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// requireKubectl returns the test bed's kubectl (`make testbed` builds it,
// hack/testbed.sh): $PLEXUS_TESTBED_BIN/kubectl, else
// $PLEXUS_TESTBED_DIR/bin/kubectl, else .testbed/bin/kubectl in the
// repository, as internal/testbed finds it. Without it the test is skipped,
// or fails when PLEXUS_REQUIRE_TESTBED=1 (make test and CI set it).
func requireKubectl(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PLEXUS_TESTBED_BIN")
	if bin == "" {
		dir := os.Getenv("PLEXUS_TESTBED_DIR")
		if dir == "" {
			dir = ".testbed"
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir) // hack/test.sh's default is relative to the root
		}
		bin = filepath.Join(dir, "bin")
	}
	kubectl := filepath.Join(bin, "kubectl")
	if st, err := os.Stat(kubectl); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		msg := fmt.Sprintf("the test bed's kubectl (for `kubectl kustomize deploy/`) is not at %s (%v); run `make testbed`, or set PLEXUS_TESTBED_BIN", kubectl, err)
		if os.Getenv("PLEXUS_REQUIRE_TESTBED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return kubectl
}

// Every value of values.yaml has its row in charts/plexus/README.md's table
// (a map whose own path has a row covers its keys).
func TestValuesDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "charts", "plexus", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values object
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "charts", "plexus", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, m object)
	walk = func(prefix string, m object) {
		for k, v := range m {
			p := prefix + k
			if bytes.Contains(readme, []byte("| `"+p+"` |")) {
				continue
			}
			if sub, ok := v.(object); ok && len(sub) > 0 {
				walk(p+".", sub)
				continue
			}
			t.Errorf("value %s has no row in charts/plexus/README.md", p)
		}
	}
	walk("", values)
}
