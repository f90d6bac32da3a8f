package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

// plexusIPAMNAD is S4's NAD with plexus-ipam as its IPAM, as a user writes
// it under plexusd: no kubernetes.kubeconfig (plexusd's defaults name its
// credentials), every other key Whereabouts'. extra is more IPAM keys.
func plexusIPAMNAD(network, rng, extra string) string {
	return fmt.Sprintf(`{"cniVersion":"0.3.0","name":%q,"type":"macvlan","master":%q,"mode":"bridge",
		"ipam":{"type":"plexus-ipam","range":%q,"gateway":%q,"log_level":"debug"%s}}`,
		network, nodeUplink, rng, extHost, extra)
}

// S4 through plexusd on real pods: a Deployment scaled 1 → 3 → 1 → 3 holds
// exactly the lowest addresses of the range at every step and takes the freed
// ones back; no address is on two pods, whichever node they run on.
func TestS4ScaleLowestFirst(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "s4")
	network := ns + "-net"
	env.CreateNAD(t, ns, "macvlan-conf", plexusIPAMNAD(network, "198.51.100.101-198.51.100.110/26", ""))
	lowest := func(n int) []string {
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("198.51.100.%d", 101+i))
		}
		return want
	}

	env.ApplyYAML(t, ns, deployment("scaled", 1, "macvlan-conf"))
	var kept []string
	for _, step := range []int{1, 3, 1, 3} {
		env.Kubectl(t, "-n", ns, "scale", "deployment/scaled", fmt.Sprintf("--replicas=%d", step))
		pods := exactPods(t, env, ns, "app=scaled", step)
		got := net1Addresses(t, pods)
		switch {
		case step == 1 && kept == nil:
			if !slices.Equal(got, lowest(1)) {
				t.Fatalf("first pod's net1 = %v, want %v", got, lowest(1))
			}
		case step == 1:
			// The ReplicaSet chooses which pod stays: it keeps its address.
			if len(got) != 1 || !slices.Contains(lowest(3), got[0]) {
				t.Fatalf("after scaling down to 1, net1 = %v, want one of %v", got, lowest(3))
			}
		default:
			if !slices.Equal(got, lowest(3)) {
				t.Fatalf("%d pods hold %v on net1, want exactly the lowest %v (freed addresses reused)", step, got, lowest(3))
			}
		}
		kept = got
		if held := allocations(t, env, network); !slices.Equal(held, got) {
			t.Fatalf("the store holds %v for %s with %d pods holding %v", held, network, step, got)
		}
	}
}

// A StatefulSet pod on a sticky plexus-ipam network, deleted and recreated
// on the other node, keeps its address; deleting the namespace frees every
// address of the network, the reservation included (pool back to 0).
func TestS4StickyStatefulSetAndNamespaceDelete(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "s4sts")
	network := ns + "-net"
	env.CreateNAD(t, ns, "sticky-net", plexusIPAMNAD(network, "198.51.100.111-198.51.100.115/26", `,"sticky":true`))
	// A pod holding the range's first address, so the StatefulSet's pod does
	// not get the lowest address by chance alone.
	env.ApplyYAML(t, ns, deployment("first", 1, "sticky-net"))
	exactPods(t, env, ns, "app=first", 1)
	env.ApplyYAML(t, ns, statefulSet("db", "sticky-net"))
	before := exactPods(t, env, ns, "app=db", 1)[0]
	addr := net1Addresses(t, []corev1.Pod{before})[0]
	if addr != "198.51.100.112" {
		t.Fatalf("db-0's net1 = %s, want 198.51.100.112 (.111 is taken)", addr)
	}

	// The recreated pod may only go to the other node.
	env.Kubectl(t, "cordon", before.Spec.NodeName)
	t.Cleanup(func() { env.TryKubectl(t.Context(), "uncordon", before.Spec.NodeName) })
	env.Kubectl(t, "-n", ns, "delete", "pod", "db-0", "--wait=true")
	var after corev1.Pod
	poll.Until(t, podLimit, "db-0 is recreated and Running on the other node", func() (bool, string) {
		p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), "db-0", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		after = *p
		return p.UID != before.UID && p.Status.Phase == corev1.PodRunning, string(p.Status.Phase) + " on " + p.Spec.NodeName
	})
	env.Kubectl(t, "uncordon", before.Spec.NodeName)
	if after.Spec.NodeName == before.Spec.NodeName {
		t.Fatalf("db-0 came back on %s, the cordoned node", after.Spec.NodeName)
	}
	if got := net1Addresses(t, []corev1.Pod{after}); !slices.Equal(got, []string{addr}) {
		t.Fatalf("db-0 recreated on %s has net1 %v, want its address %s back (sticky)", after.Spec.NodeName, got, addr)
	}

	env.Kubectl(t, "delete", "namespace", ns, "--wait=false")
	poll.Until(t, 3*podLimit, "deleting the namespace frees every address of "+network, func() (bool, string) {
		held := allocations(t, env, network)
		return len(held) == 0, fmt.Sprintf("still held: %v", held)
	})
}

// exactPods waits until exactly n pods match selector in ns, all Running and
// none terminating (a scaled-down pod's DEL has run once it is gone).
func exactPods(t *testing.T, env *testbed.Env, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	poll.Until(t, podLimit, fmt.Sprintf("exactly %d pods %s in %s, all Running", n, selector, ns), func() (bool, string) {
		list, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		pods = list.Items
		var states []string
		ok := len(pods) == n
		for _, p := range pods {
			ok = ok && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil
			states = append(states, p.Name+"="+string(p.Status.Phase))
		}
		return ok, strings.Join(states, " ")
	})
	return pods
}

// net1Addresses returns the pods' net1 addresses from network-status,
// sorted; it fails t when two pods hold one address.
func net1Addresses(t *testing.T, pods []corev1.Pod) []string {
	t.Helper()
	var addrs []string
	for _, p := range pods {
		var ip string
		for _, s := range statusOf(t, &p) {
			if s.Interface == "net1" && len(s.IPs) == 1 {
				ip = s.IPs[0]
			}
		}
		if ip == "" {
			t.Fatalf("pod %s has no net1 address in network-status", p.Name)
		}
		addrs = append(addrs, ip)
	}
	slices.SortFunc(addrs, func(a, b string) int {
		return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b))
	})
	if dup := slices.Compact(slices.Clone(addrs)); len(dup) != len(addrs) {
		t.Fatalf("two pods hold one address on net1: %v", addrs)
	}
	return addrs
}

// allocations lists the addresses the Kubernetes store (kube-system, where
// plexusd's defaults put it) holds for a CNI network, reservations included.
func allocations(t *testing.T, env *testbed.Env, network string) []string {
	t.Helper()
	gvr := v1.SchemeGroupVersion.WithResource(v1.ResourceIPAllocations)
	list, err := env.Dynamic.Resource(gvr).Namespace("kube-system").List(t.Context(),
		metav1.ListOptions{LabelSelector: v1.LabelNetwork + "=" + network})
	if err != nil {
		t.Fatalf("listing %s: %v", gvr.Resource, err)
	}
	var addrs []string
	for _, o := range list.Items {
		a, _, _ := unstructured.NestedString(o.Object, "spec", "address")
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b string) int {
		return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b))
	})
	return addrs
}

// statefulSet is a one-replica StatefulSet of the toolbox with networks.
func statefulSet(name, networks string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %[1]s}
spec:
  replicas: 1
  serviceName: %[1]s
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata:
      labels: {app: %[1]s}
      annotations: {k8s.v1.cni.cncf.io/networks: %[2]q}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: toolbox
          image: %[3]s
          imagePullPolicy: IfNotPresent
`, name, networks, toolbox)
}
