package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	"github.com/plexus-cni/plexus/internal/wbimport"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/plugin"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// whereaboutsCRDs creates the fixture CRDs unless they exist and waits
// until their resources are served; CRDs it created are deleted at the
// end.
func whereaboutsCRDs(t *testing.T, env *testbed.Env) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "whereabouts-crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		_, err := env.Dynamic.Resource(crdResource).Create(t.Context(), &u, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		name := u.GetName()
		t.Cleanup(func() { _ = env.Dynamic.Resource(crdResource).Delete(t.Context(), name, metav1.DeleteOptions{}) })
	}
	poll.Until(t, 30*time.Second, "Whereabouts' CRDs are served", func() (bool, string) {
		for _, r := range []schema.GroupVersionResource{wbimport.IPPools, wbimport.Reservations} {
			if _, err := env.Dynamic.Resource(r).Namespace("default").List(t.Context(), metav1.ListOptions{Limit: 1}); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})
}

// wbObjects creates Whereabouts' objects in ns.
func wbObjects(t *testing.T, env *testbed.Env, ns string, pools map[string]string, resv map[string]string) {
	t.Helper()
	for name, spec := range pools {
		createWB(t, env, ns, wbimport.IPPools, "IPPool", name, spec)
	}
	for name, spec := range resv {
		createWB(t, env, ns, wbimport.Reservations, "OverlappingRangeIPReservation", name, spec)
	}
}

func createWB(t *testing.T, env *testbed.Env, ns string, r schema.GroupVersionResource, kind, name, spec string) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": r.Group + "/" + r.Version, "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns}}}
	var s map[string]any
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	u.Object["spec"] = s
	if _, err := env.Dynamic.Resource(r).Namespace(ns).Create(t.Context(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating %s %s: %v", kind, name, err)
	}
}

// testPod creates a pod on node-a; status is its network-status ("" for
// none), phase its phase.
func testPod(t *testing.T, env *testbed.Env, ns, name, status string, phase corev1.PodPhase) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}
	if status != "" {
		p.Annotations = map[string]string{"k8s.v1.cni.cncf.io/network-status": status}
	}
	created, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if phase != "" {
		created.Status.Phase = phase
		if _, err := env.Client.CoreV1().Pods(ns).UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// ipamAdd runs plexus-ipam's ADD (the plugin's code, Kubernetes store)
// for a new container; it returns the address, or the error.
func ipamAdd(conf, cid string) (netip.Addr, error) {
	var got netip.Addr
	p := plugin.Default()
	p.Loader.DefaultPaths = nil
	p.Getenv = func(string) string { return "node-b" }
	p.Print = func(res types.Result, _ string) error {
		r, err := current.NewResultFromResult(res)
		if err == nil && len(r.IPs) == 1 {
			got, _ = netip.AddrFromSlice(r.IPs[0].Address.IP)
			got = got.Unmap()
		}
		return err
	}
	err := p.Add(&skel.CmdArgs{ContainerID: cid, IfName: "net1", Netns: "/run/netns/x", StdinData: []byte(conf),
		Args: "K8S_POD_NAMESPACE=x;K8S_POD_NAME=" + cid + ";K8S_POD_UID=uid-" + cid})
	return got, err
}

// Whereabouts-shaped objects on the real API server: a dry run writes
// nothing; the import claims the addresses of live pods (not those of a
// deleted or failed pod, nor a reservation leaked without its pod using
// it); a second run changes nothing; plexus-ipam, with the NADs switched
// to it, then fills the ranges without handing out an imported address;
// an address plexus-ipam gave away before the import is reported.
func TestIPAMImportFromWhereabouts(t *testing.T) {
	env := testbed.Require(t)
	whereaboutsCRDs(t, env)
	ns := env.Namespace(t, "wb-import")
	nadConf := func(name, typ, ipam string) string {
		return `{"cniVersion":"1.0.0","name":"` + name + `","type":"macvlan","master":"plexus-absent0","ipam":{"type":"` + typ + `",` +
			ipam + `,"kubernetes":{"kubeconfig":"` + env.Kubeconfig + `","namespace":"` + ns + `"}}}`
	}
	blue := `"range":"192.0.2.0/28","network_name":"blue"`
	plain := `"range":"198.51.100.0/28","range_start":"198.51.100.4"`
	env.CreateNAD(t, ns, "blue", nadConf("blue", "whereabouts", blue))
	env.CreateNAD(t, ns, "plain", nadConf("plain", "whereabouts", plain))
	status := func(nad, addr string) string {
		return `[{"name":"` + ns + `/` + nad + `","interface":"net1","ips":["` + addr + `"]}]`
	}
	testPod(t, env, ns, "web-0", status("blue", "192.0.2.1"), "")
	testPod(t, env, ns, "web-1", "", "")
	testPod(t, env, ns, "batch", status("plain", "198.51.100.5"), corev1.PodFailed)
	testPod(t, env, ns, "db-0", status("plain", "198.51.100.4"), "")
	ref := func(pod string) string { return ns + "/" + pod }
	wbObjects(t, env, ns, map[string]string{
		"blue-192.0.2.0-28": `{"range":"192.0.2.0/28","allocations":{
			"1":{"id":"c-web0","podref":"` + ref("web-0") + `","ifname":"net1"},
			"2":{"id":"c-web1","podref":"` + ref("web-1") + `","ifname":"net1"},
			"3":{"id":"c-deleted","podref":"` + ref("deleted") + `","ifname":"net1"}}}`,
		"198.51.100.0-28": `{"range":"198.51.100.0/28","allocations":{
			"4":{"id":"c-db0","podref":"` + ref("db-0") + `","ifname":"net1"},
			"5":{"id":"c-batch","podref":"` + ref("batch") + `","ifname":"net1"}}}`,
	}, map[string]string{
		"blue-192.0.2.1": `{"containerid":"c-web0","podref":"` + ref("web-0") + `","ifname":"net1"}`,
		"198.51.100.4":   `{"containerid":"c-db0","podref":"` + ref("db-0") + `","ifname":"net1"}`,
		"198.51.100.9":   `{"containerid":"c-leak","podref":"` + ref("web-1") + `","ifname":"net1"}`,
	})
	st, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	held := func() []store.Allocation {
		all, err := st.List(t.Context(), store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	args := []string{"ipam", "import", "--from-whereabouts", "--whereabouts-namespace", ns, "--store-namespace", ns, "--kubeconfig=" + env.Kubeconfig}

	stdout, stderr, code := runCmd(t, "", append(args, "--dry-run")...)
	if code != 0 || !strings.Contains(stdout, "dry run, nothing written: 3 would be imported, 0 already imported, 3 skipped, 0 problems") {
		t.Errorf("dry run: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	if h := held(); len(h) != 0 {
		t.Fatalf("the dry run wrote %v", h)
	}

	stdout, stderr, code = runCmd(t, "", append(args, "-o", "json")...)
	var rep wbimport.Report
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || rep.Count(wbimport.Imported) != 3 || rep.Count(wbimport.Skipped) != 3 {
		t.Fatalf("import: exit %d, stderr %q, %v, stdout:\n%s", code, stderr, err, stdout)
	}
	imported := map[netip.Addr]store.Allocation{}
	for _, a := range held() {
		imported[a.Address] = a
	}
	web0 := imported[netip.MustParseAddr("192.0.2.1")]
	if len(imported) != 3 || web0.Space != "net:blue" || web0.ContainerID != "c-web0" || web0.IfName != "net1" ||
		web0.PodName != "web-0" || web0.PodUID == "" || web0.Node != "node-a" {
		t.Errorf("imported %v", imported)
	}
	for _, a := range []string{"192.0.2.2", "198.51.100.4"} {
		if _, ok := imported[netip.MustParseAddr(a)]; !ok {
			t.Errorf("%s not imported", a)
		}
	}

	stdout, _, code = runCmd(t, "", args...)
	if code != 0 || !strings.Contains(stdout, "0 imported, 3 already imported, 3 skipped, 0 problems") {
		t.Errorf("second run: exit %d:\n%s", code, stdout)
	}
	if h := held(); len(h) != 3 {
		t.Errorf("second run changed the store: %v", h)
	}

	// The NADs switch to plexus-ipam; it fills both ranges.
	for _, tc := range []struct{ name, ipam string }{{"blue", blue}, {"plain", plain}} {
		conf := nadConf(tc.name, config.TypePlexus, tc.ipam)
		for i := 0; ; i++ {
			a, err := ipamAdd(conf, fmt.Sprintf("%s-%d", tc.name, i))
			if cnierr.Code(err) == cnierr.TryAgainLater && strings.Contains(err.Error(), "no free address") {
				break
			}
			if err != nil {
				t.Fatalf("ADD %s-%d: %v", tc.name, i, err)
			}
			if _, ok := imported[a]; ok {
				t.Errorf("plexus-ipam handed out %s, imported for %s", a, imported[a].PodName)
			}
			if i > 16 {
				t.Fatalf("%s never exhausted", tc.name)
			}
		}
	}

	// A pod comes up under Whereabouts with an address plexus-ipam has
	// given away meanwhile: the import reports it and fails.
	testPod(t, env, ns, "late", status("plain", "198.51.100.6"), "")
	wbObjects(t, env, ns, map[string]string{"198.51.100.0-27": `{"range":"198.51.100.0/27","allocations":{
		"6":{"id":"c-late","podref":"` + ref("late") + `","ifname":"net1"}}}`}, nil)
	stdout, _, code = runCmd(t, "", args...)
	if code != exitInvalid || !strings.Contains(stdout, "two pods hold it") {
		t.Errorf("conflict: exit %d:\n%s", code, stdout)
	}
}
