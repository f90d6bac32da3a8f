package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/internal/controller/networks"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// ipamNAD creates a macvlan NAD whose IPAM is plexus-ipam on the
// Kubernetes store, its objects in the test's namespace, TEST-NET-2.
func (w *world) ipamNAD(name string) {
	w.t.Helper()
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": []any{map[string]any{
		"type": "macvlan", "master": nodesim.DefaultUplink, "mode": "bridge",
		"ipam": map[string]any{"type": "plexus-ipam", "range": "198.51.100.0/24", "log_level": "debug",
			"kubernetes": map[string]any{"kubeconfig": w.env.Kubeconfig, "namespace": w.ns}},
	}}})
	w.env.CreateNAD(w.t, w.ns, name, string(conf))
}

// metricValue returns the value of the series with exactly these labels
// (0 when absent).
func metricValue(t *testing.T, text, name, labels string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+"{"+labels+"}") + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s{%s}: %v", name, labels, err)
	}
	return v
}

func (n *node) metrics(t *testing.T) string {
	t.Helper()
	_, text, err := n.get("/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return text
}

// plexus-ipam under plexusd: the delegates' IPAM requests go to the
// daemon's /ipam (its metrics count them), addresses are handed out
// lowest-first with this node recorded, the node's pool gauge follows
// (the cluster-wide one is plexus-controller's); with the daemon stopped,
// DEL runs in the shim's process and plexus-ipam in its own, and still
// releases every address.
func TestIPAMThroughDaemon(t *testing.T) {
	w := newWorld(t)
	if _, err := os.Stat(repoBin("plexus-ipam")); err != nil {
		t.Fatalf("plexus-ipam is missing: run `make build` first")
	}
	w.ipamNAD("macvlan-ipam")
	n := w.newNode("ipamd-1")
	d := w.start(n, w.daemonConfig(n, map[string]any{"ipamNamespace": w.ns}))
	st, err := kubestore.NewFromKubeconfig(w.env.Kubeconfig, kubestore.Options{Namespace: w.ns}, "")
	if err != nil {
		t.Fatal(err)
	}
	var pods []*nodesim.Pod
	for i := range 3 {
		p, err := n.RunPod(ctxFor(t, time.Minute), t, nodesim.PodSpec{Namespace: w.ns, Name: fmt.Sprintf("ipam-%d", i),
			Annotations: netsAnnotation("macvlan-ipam")})
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		pods = append(pods, p)
		addrs, err := p.Addrs("net1")
		if want := fmt.Sprintf("198.51.100.%d/24", i+1); err != nil || len(addrs) != 1 || addrs[0].String() != want {
			t.Fatalf("pod %d: net1 has %v (%v), want %s", i, addrs, err, want)
		}
	}
	text := n.metrics(t)
	if got := metricValue(t, text, "plexusd_ipam_request_duration_seconds_count", `command="ADD",network="macvlan-ipam"`); got != 3 {
		t.Errorf("/ipam ADDs measured: %v, want 3:\n%s", got, grepLines(text, "plexusd_ipam"))
	}
	held, err := st.List(t.Context(), store.Filter{Node: n.Name})
	if err != nil || len(held) != 3 {
		t.Errorf("allocations recorded for node %s: %d (%v), want 3", n.Name, len(held), err)
	}
	waitPools(t, n, w.ns, 3)

	if err := pods[0].Remove(ctxFor(t, time.Minute)); err != nil {
		t.Fatalf("DEL through the daemon: %v", err)
	}
	waitPools(t, n, w.ns, 2)
	if got := metricValue(t, n.metrics(t), "plexusd_ipam_request_duration_seconds_count", `command="DEL",network="macvlan-ipam"`); got < 1 {
		t.Errorf("/ipam DELs measured: %v, want at least 1", got)
	}

	d.stop(syscall.SIGTERM)
	for _, p := range pods[1:] {
		if err := p.Del(ctxFor(t, time.Minute)); err != nil {
			t.Fatalf("DEL of %s with plexusd stopped: %v", p.Name, err)
		}
	}
	left, err := st.List(t.Context(), store.Filter{})
	if err != nil || len(left) != 0 {
		t.Errorf("after DEL with the daemon stopped, allocations left: %v (%v)", left, err)
	}
}

// waitPools waits until the node's pool gauge of the test's space shows
// onNode allocations; plexusd watches no IPSpace, so it never exports the
// cluster-wide gauge (plexus-controller's
// plexus_controller_ipam_pool_allocated_addresses).
func waitPools(t *testing.T, n *node, ns string, onNode float64) {
	t.Helper()
	labels := fmt.Sprintf(`namespace=%q,space="net:"`, ns)
	waitFor(t, 30*time.Second, fmt.Sprintf("the pool gauge shows %v on this node", onNode), func() (bool, string) {
		text := n.metrics(t)
		o := metricValue(t, text, "plexusd_ipam_node_allocations", labels)
		return o == onNode, grepLines(text, "plexusd_ipam_node")
	})
	if text := n.metrics(t); strings.Contains(text, "plexusd_ipam_pool_allocated_addresses") {
		t.Errorf("plexusd exports the cluster-wide pool gauge:\n%s", grepLines(text, "plexusd_ipam_pool"))
	}
}

// A PlexusIPAM NetworkDefinition renders a NAD that names no store
// (no kubernetes.kubeconfig, no etcd_host). On a node with plexusd it
// allocates: with plexusd's defaults (the flat file it writes into the
// conf dir, naming its kubeconfig) and, with the defaults turned off,
// with plexusd's own credentials. Its objects go to kube-system, the
// default namespace; a network_name of the test's own keeps them apart.
func TestIPAMWithoutKubeconfig(t *testing.T) {
	w := newWorld(t)
	if _, err := os.Stat(repoBin("plexus-ipam")); err != nil {
		t.Fatalf("plexus-ipam is missing: run `make build` first")
	}
	r, err := networks.Render(v1.NetworkDefinitionSpec{Type: v1.NetworkTypeSimpleMacvlan, Name: "pool-net", Namespace: w.ns,
		SimpleMacvlanConfig: &v1.SimpleMacvlanConfig{Master: nodesim.DefaultUplink, IPAMConfig: &v1.IPAMConfig{Type: v1.IPAMTypePlexusIPAM,
			PlexusIPAMConfig: &v1.PlexusIPAMConfig{Range: "198.51.100.0/24", NetworkName: w.ns}}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Config, "kubeconfig") || strings.Contains(r.Config, "etcd_host") {
		t.Fatalf("rendered config names a store: %s", r.Config)
	}
	w.env.CreateNAD(t, w.ns, r.Name, r.Config)
	st, err := kubestore.NewFromKubeconfig(w.env.Kubeconfig, kubestore.Options{Namespace: "kube-system"}, "")
	if err != nil {
		t.Fatal(err)
	}
	space := "net:" + w.ns
	t.Cleanup(func() { cleanSpace(t, w, st, space) })
	for i, tc := range []struct {
		name  string
		extra map[string]any
		flat  bool
	}{
		{"plexusd's defaults", nil, true},
		{"plexusd's own credentials", map[string]any{"ipamDefaults": false}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := w.newNode(fmt.Sprintf("nokc-%d", i))
			d := w.start(n, w.daemonConfig(n, tc.extra))
			flat := filepath.Join(n.ConfDir, "plexus-ipam.d", "plexus-ipam.conf")
			if raw, err := os.ReadFile(flat); tc.flat != (err == nil) || tc.flat && !strings.Contains(string(raw), w.env.Kubeconfig) {
				t.Fatalf("flat file %s: %q (%v), want it written: %v", flat, raw, err, tc.flat)
			}
			p, err := n.RunPod(ctxFor(t, time.Minute), t, nodesim.PodSpec{Namespace: w.ns, Name: "nokc-" + strconv.Itoa(i),
				Annotations: netsAnnotation(r.Name)})
			if err != nil {
				t.Fatalf("pod: %v\nplexusd log:\n%s", err, d.log.String())
			}
			addrs, err := p.Addrs("net1")
			if err != nil || len(addrs) != 1 || addrs[0].String() != "198.51.100.1/24" {
				t.Fatalf("net1 has %v (%v), want 198.51.100.1/24", addrs, err)
			}
			if got := metricValue(t, n.metrics(t), "plexusd_ipam_request_duration_seconds_count", `command="ADD",network="pool-net"`); got != 1 {
				t.Errorf("/ipam ADDs measured: %v, want 1 (the request went through plexusd)", got)
			}
			held, err := st.List(t.Context(), store.Filter{Space: space, Node: n.Name})
			if err != nil || len(held) != 1 || held[0].Address.String() != "198.51.100.1" {
				t.Errorf("allocations in kube-system for node %s: %v (%v), want 198.51.100.1", n.Name, held, err)
			}
			// DEL through plexusd too (the node's flat file is not where a
			// plexus-ipam of its own would look: the host's /etc/cni/net.d).
			if err := p.Remove(ctxFor(t, time.Minute)); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if left, err := st.List(t.Context(), store.Filter{Space: space}); err != nil || len(left) != 0 {
				t.Errorf("after DEL: %v (%v), want nothing held", left, err)
			}
		})
	}
}

// cleanSpace frees what a test left in a kube-system space and deletes
// its IPSpace.
func cleanSpace(t *testing.T, w *world, st *kubestore.Store, space string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	left, err := st.List(ctx, store.Filter{Space: space})
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, a := range left {
		if err := st.Free(ctx, space, a.Address); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	gvr := schema.GroupVersionResource{Group: v1.Group, Version: v1.Version, Resource: v1.ResourceIPSpaces}
	err = w.env.Dynamic.Resource(gvr).Namespace("kube-system").Delete(ctx, "s"+store.SpaceID(space), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("cleanup: %v", err)
	}
}
