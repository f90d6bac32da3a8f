package daemon

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/plexus-cni/plexus/deploy/crds/nad"
	"github.com/plexus-cni/plexus/internal/testbed"
)

// rendered returns the objects of a kustomization: `kubectl kustomize DIR`
// (what `kubectl apply/delete -k` act on) when the test bed's kubectl is
// built, else the files its resources list (deploy/ has no generators or
// patches, so both give the same objects).
func rendered(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	kubectl := filepath.Join(testbed.BinDir(), "kubectl")
	if _, err := os.Stat(kubectl); err == nil {
		out, err := exec.Command(kubectl, "kustomize", dir).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		tmp := filepath.Join(t.TempDir(), "rendered.yaml")
		if err := os.WriteFile(tmp, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return decodeFile(t, tmp)
	}
	t.Logf("%s not built: reading the files kustomization.yaml lists", kubectl)
	var objs []*unstructured.Unstructured
	for _, res := range kustomizeResources(t, dir) {
		objs = append(objs, decodeFile(t, res)...)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// TestDeleteKeepsTheNADCRD: `kubectl delete -k deploy/` deletes what
// deploy/ renders, which must not hold the shared NAD CRD (deleting it
// deletes every NAD, Multus's included). deploy/crds/nad renders it alone,
// and the controller's embedded copy (created when missing) is that file.
func TestDeleteKeepsTheNADCRD(t *testing.T) {
	root := filepath.Join(testbed.Root(), "deploy")
	objs := rendered(t, root)
	if len(objs) < 10 {
		t.Fatalf("deploy/ renders %d objects; the rendering is broken", len(objs))
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" && o.GetName() == nad.Name {
			t.Errorf("deploy/ renders the CRD %s: `kubectl delete -k deploy/` would delete every NAD", nad.Name)
		}
	}
	if find(objs, "CustomResourceDefinition", "ipallocations.plexus.dev") == nil {
		t.Error("deploy/ lacks plexus's own CRDs")
	}
	alone := rendered(t, filepath.Join(root, "crds", "nad"))
	if len(alone) != 1 || alone[0].GetName() != nad.Name {
		t.Errorf("deploy/crds/nad renders %d objects, want the NAD CRD alone", len(alone))
	}
	file, err := os.ReadFile(filepath.Join(root, "crds", "nad", nad.Name+".yaml"))
	if err != nil || !bytes.Equal(file, nad.CRD) {
		t.Errorf("the embedded CRD differs from deploy/crds/nad (%v)", err)
	}
}

// TestProductionManifests checks what running plexus in production needs
// from deploy/ (issue 16): probes, metrics Prometheus can reach, priority,
// tolerations, rolling updates, resources, a documented securityContext,
// and a disruption budget and anti-affinity for the controller.
func TestProductionManifests(t *testing.T) {
	root := filepath.Join(testbed.Root(), "deploy")
	objs := rendered(t, root)
	checkPlexusd(t, objs)
	checkController(t, objs)
	checkPodMonitor(t, root, objs)
}

func str(o map[string]any, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(o, path...)
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		raw, _ := json.Marshal(v)
		return string(raw)
	}
}

func firstContainer(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs := podContainers(o)
	if len(cs) == 0 {
		t.Fatalf("%s/%s has no container", o.GetKind(), o.GetName())
	}
	return cs[0]
}

// port returns the containerPort of the container's port named name.
func port(c map[string]any, name string) (containerPort, hostPort int64) {
	ports, _, _ := unstructured.NestedSlice(c, "ports")
	for _, p := range ports {
		m := p.(map[string]any)
		if m["name"] == name {
			cp, _, _ := unstructured.NestedInt64(m, "containerPort")
			hp, _, _ := unstructured.NestedInt64(m, "hostPort")
			return cp, hp
		}
	}
	return 0, 0
}

func checkPlexusd(t *testing.T, objs []*unstructured.Unstructured) {
	ds := find(objs, "DaemonSet", "plexusd")
	if ds == nil {
		t.Fatal("no DaemonSet plexusd")
	}
	spec := ds.Object
	if got := str(spec, "spec", "template", "spec", "priorityClassName"); got != "system-node-critical" {
		t.Errorf("plexusd priorityClassName %q, want system-node-critical", got)
	}
	tolerations, _, _ := unstructured.NestedSlice(spec, "spec", "template", "spec", "tolerations")
	everyTaint := false
	for _, tol := range tolerations {
		m := tol.(map[string]any)
		everyTaint = everyTaint || (m["operator"] == "Exists" && m["key"] == nil && m["effect"] == nil)
	}
	if !everyTaint {
		t.Errorf("plexusd tolerations %v: want one {operator: Exists} tolerating every taint", tolerations)
	}
	if str(spec, "spec", "updateStrategy", "type") != "RollingUpdate" || str(spec, "spec", "updateStrategy", "rollingUpdate", "maxUnavailable") == "" {
		t.Errorf("plexusd updateStrategy %s, want RollingUpdate with maxUnavailable", str(spec, "spec", "updateStrategy"))
	}
	c := firstContainer(t, ds)
	if str(c, "resources", "requests", "cpu") == "" || str(c, "resources", "requests", "memory") == "" || str(c, "resources", "limits", "memory") == "" {
		t.Errorf("plexusd resources %s, want cpu and memory requests and a memory limit", str(c, "resources"))
	}
	sc, _, _ := unstructured.NestedMap(c, "securityContext")
	if sc["privileged"] != true || sc["readOnlyRootFilesystem"] != true {
		t.Errorf("plexusd securityContext %v, want privileged (documented) with a read-only root filesystem", sc)
	}
	cp, hp := port(c, "metrics")
	if cp == 0 || cp == 9091 || hp != cp {
		t.Errorf("plexusd metrics port %d (hostPort %d): want one, not Pushgateway's 9091, equal to its hostPort", cp, hp)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if host := str(c, probe, "httpGet", "host"); host != "" || str(c, probe, "httpGet", "port") != "metrics" {
			t.Errorf("plexusd %s %s: want the metrics port on the pod (node) address", probe, str(c, probe))
		}
	}
	if str(c, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Errorf("plexusd readinessProbe %s, want /readyz", str(c, "readinessProbe"))
	}
	checkMetricsAddress(t, objs, cp)
	checkDelegateRoot(t, objs, c, ds)
	svc := find(objs, "Service", "plexusd-metrics")
	if svc == nil {
		t.Fatal("no Service plexusd-metrics for Prometheus")
	}
	if str(svc.Object, "spec", "clusterIP") != "None" ||
		str(svc.Object, "spec", "selector") != str(spec, "spec", "template", "metadata", "labels") ||
		!strings.Contains(str(svc.Object, "spec", "ports"), `"targetPort":"metrics"`) {
		t.Errorf("Service plexusd-metrics %s: want headless, selecting plexusd's pods, targetPort metrics", str(svc.Object, "spec"))
	}
}

// checkMetricsAddress: the ConfigMap's metricsAddress listens on every
// address (not 127.0.0.1 of the host network) on the container's port.
func checkMetricsAddress(t *testing.T, objs []*unstructured.Unstructured, want int64) {
	cm := find(objs, "ConfigMap", "plexusd-config")
	if cm == nil {
		t.Fatal("no ConfigMap plexusd-config")
	}
	var conf struct {
		MetricsAddress string `json:"metricsAddress"`
	}
	if err := json.Unmarshal([]byte(str(cm.Object, "data", "plexusd.json")), &conf); err != nil {
		t.Fatalf("plexusd.json: %v", err)
	}
	host, p, err := net.SplitHostPort(conf.MetricsAddress)
	if err != nil || (host != "" && host != "0.0.0.0" && host != "::") || p != strconv.FormatInt(want, 10) {
		t.Errorf("metricsAddress %q: want every address on port %d (%v)", conf.MetricsAddress, want, err)
	}
}

func checkController(t *testing.T, objs []*unstructured.Unstructured) {
	dep := find(objs, "Deployment", "plexus-controller")
	if dep == nil {
		t.Fatal("no Deployment plexus-controller")
	}
	labels := str(dep.Object, "spec", "template", "metadata", "labels")
	c := firstContainer(t, dep)
	if str(c, "readinessProbe", "httpGet", "path") == "" || str(c, "livenessProbe", "httpGet", "path") == "" {
		t.Errorf("plexus-controller probes: readiness %s, liveness %s", str(c, "readinessProbe"), str(c, "livenessProbe"))
	}
	if cp, _ := port(c, "metrics"); cp == 0 {
		t.Error("plexus-controller has no metrics port")
	}
	if str(c, "resources", "requests", "memory") == "" || str(c, "resources", "limits", "memory") == "" {
		t.Errorf("plexus-controller resources %s", str(c, "resources"))
	}
	anti := str(dep.Object, "spec", "template", "spec", "affinity", "podAntiAffinity")
	if !strings.Contains(anti, `"topologyKey":"kubernetes.io/hostname"`) || !strings.Contains(anti, str(dep.Object, "spec", "selector", "matchLabels")) {
		t.Errorf("plexus-controller podAntiAffinity %s: want replicas apart by hostname", anti)
	}
	var pdb *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "PodDisruptionBudget" && str(o.Object, "spec", "selector", "matchLabels") == labels {
			pdb = o
		}
	}
	if pdb == nil || (str(pdb.Object, "spec", "minAvailable") == "" && str(pdb.Object, "spec", "maxUnavailable") == "") {
		t.Errorf("no PodDisruptionBudget selecting plexus-controller's pods %s", labels)
	}
}

// checkPodMonitor: the example is not applied by deploy/ (its CRD may be
// absent) and selects pods that have a port of the name it scrapes.
func checkPodMonitor(t *testing.T, root string, objs []*unstructured.Unstructured) {
	if find(objs, "PodMonitor", "plexus") != nil {
		t.Error("deploy/ applies the PodMonitor; it must stay an example")
	}
	ex := decodeFile(t, filepath.Join(root, "examples", "podmonitor.yaml"))
	if len(ex) != 1 || ex[0].GetKind() != "PodMonitor" {
		t.Fatalf("deploy/examples/podmonitor.yaml: %d objects", len(ex))
	}
	sel, _, _ := unstructured.NestedStringMap(ex[0].Object, "spec", "selector", "matchLabels")
	endpoints, _, _ := unstructured.NestedSlice(ex[0].Object, "spec", "podMetricsEndpoints")
	if len(endpoints) != 1 {
		t.Fatalf("PodMonitor endpoints %v", endpoints)
	}
	portName := endpoints[0].(map[string]any)["port"].(string)
	for _, w := range []*unstructured.Unstructured{find(objs, "DaemonSet", "plexusd"), find(objs, "Deployment", "plexus-controller")} {
		labels, _, _ := unstructured.NestedStringMap(w.Object, "spec", "template", "metadata", "labels")
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("PodMonitor selector %v does not select %s's pods %v", sel, w.GetName(), labels)
			}
		}
		if cp, _ := port(firstContainer(t, w), portName); cp == 0 {
			t.Errorf("%s has no port %q for the PodMonitor", w.GetName(), portName)
		}
	}
}

// checkDelegateRoot: the delegates plexusd runs see the host's files, as the
// runtime's do: delegateRoot is set and the host's / is mounted there with
// host-to-container propagation (new netns mounts appear inside).
func checkDelegateRoot(t *testing.T, objs []*unstructured.Unstructured, c map[string]any, ds *unstructured.Unstructured) {
	t.Helper()
	cm := find(objs, "ConfigMap", "plexusd-config")
	if cm == nil {
		t.Fatal("no ConfigMap plexusd-config")
	}
	var conf struct {
		DelegateRoot string `json:"delegateRoot"`
	}
	if err := json.Unmarshal([]byte(str(cm.Object, "data", "plexusd.json")), &conf); err != nil || conf.DelegateRoot == "" {
		t.Fatalf("plexusd.json delegateRoot %q (%v): want the host's root", conf.DelegateRoot, err)
	}
	if hostPID, _, _ := unstructured.NestedBool(ds.Object, "spec", "template", "spec", "hostPID"); !hostPID {
		t.Errorf("plexusd has no hostPID: chrooted delegates would read another PID namespace's /proc")
	}
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	volumes, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "volumes")
	for _, m := range mounts {
		mm := m.(map[string]any)
		if mm["mountPath"] != conf.DelegateRoot {
			continue
		}
		if mm["mountPropagation"] != "HostToContainer" {
			t.Errorf("%s is mounted with propagation %v, want HostToContainer", conf.DelegateRoot, mm["mountPropagation"])
		}
		for _, v := range volumes {
			vm := v.(map[string]any)
			if vm["name"] == mm["name"] && str(vm, "hostPath", "path") == "/" {
				return
			}
		}
		t.Fatalf("volume %v mounted at %s is not the host's /", mm["name"], conf.DelegateRoot)
	}
	t.Fatalf("nothing is mounted at delegateRoot %s", conf.DelegateRoot)
}
