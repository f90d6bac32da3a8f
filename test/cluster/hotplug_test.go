package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// annotateNetworks sets a running pod's networks annotation (a hot-plug).
func annotateNetworks(t *testing.T, env *testbed.Env, ns, pod, networks string) {
	t.Helper()
	env.Kubectl(t, "-n", ns, "annotate", "pod", pod, "--overwrite", networksAnnotation+"="+networks)
}

// waitInterfaces waits until the pod's network-status lists exactly
// ifnames (in order) and returns the pod.
func waitInterfaces(t *testing.T, env *testbed.Env, ns, name string, ifnames ...string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	poll.Until(t, podLimit, fmt.Sprintf("pod %s/%s has interfaces %v in network-status", ns, name, ifnames), func() (bool, string) {
		p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = *p
		var got []string
		for _, s := range statusOf(t, p) {
			got = append(got, s.Interface)
		}
		return slices.Equal(got, ifnames), fmt.Sprintf("network-status lists %v", got)
	})
	return pod
}

// addressOf is an interface's first address in network-status.
func addressOf(t *testing.T, pod *corev1.Pod, ifname string) string {
	t.Helper()
	for _, s := range statusOf(t, pod) {
		if s.Interface == ifname && len(s.IPs) > 0 {
			return s.IPs[0]
		}
	}
	t.Fatalf("pod %s has no address on %s in network-status", pod.Name, ifname)
	return ""
}

// waitEvent waits for an event of reason about the pod whose message
// holds substr.
func waitEvent(t *testing.T, env *testbed.Env, ns, pod, reason, substr string) corev1.Event {
	t.Helper()
	var ev corev1.Event
	poll.Until(t, podLimit, fmt.Sprintf("event %s about %s/%s naming %q", reason, ns, pod, substr), func() (bool, string) {
		var seen []string
		for _, e := range podEvents(t, env, ns, pod) {
			if e.Reason == reason && strings.Contains(e.Message, substr) {
				ev = e
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, fmt.Sprintf("events %v", seen)
	})
	return ev
}

// nodeRecords returns the attachment records (and their lock and mark
// files) of a pod UID left on the nodes' state directories.
func nodeRecords(t *testing.T, uid string) []string {
	t.Helper()
	var left []string
	for _, node := range []string{"node-1", "node-2"} {
		dir := filepath.Join(testbed.ClusterDir(), "nodes", node, "overlay", "var", "upper", "lib", "cni", "plexus", "attachments")
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err == nil && strings.Contains(string(data), uid) {
				left = append(left, node+":"+e.Name())
			}
		}
	}
	return left
}

// Hot-plug on real pods. A Deployment's template gains a network: its new
// pods have it. A single running pod gains one through its annotation:
// it appears without a restart and carries traffic. Removing the first of
// identical entries removes net1; the others keep their names and
// addresses, and the removed address goes back to the pool; deleting the
// pod frees the hot-plugged addresses too.
func TestHotplugRunningPod(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "hotplug")
	network := ns + "-net"
	env.CreateNAD(t, ns, "blue", plexusIPAMNAD(network, "198.51.100.101-198.51.100.110/26", ""))
	env.ApplyYAML(t, ns, deployment("hp", 1, "blue"))
	first := runningPods(t, env, ns, "app=hp", 1)[0]

	env.Kubectl(t, "-n", ns, "patch", "deployment/hp", "--type=merge", "-p",
		`{"spec":{"template":{"metadata":{"annotations":{"`+networksAnnotation+`":"blue,blue"}}}}}`)
	// The rollout is over when the first pod is gone, not only terminating
	// (its address is freed by its DEL).
	var pod corev1.Pod
	poll.Until(t, podLimit, "the Deployment's new pod replaced the first", func() (bool, string) {
		pod = exactPods(t, env, ns, "app=hp", 1)[0]
		return pod.UID != first.UID, "still the first pod"
	})
	pod = waitInterfaces(t, env, ns, pod.Name, "eth0", "net1", "net2")

	annotateNetworks(t, env, ns, pod.Name, "blue,blue,blue")
	after := waitInterfaces(t, env, ns, pod.Name, "eth0", "net1", "net2", "net3")
	if after.UID != pod.UID || after.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("the pod was replaced or restarted by a hot-plug (UID %s → %s, restarts %d)",
			pod.UID, after.UID, after.Status.ContainerStatuses[0].RestartCount)
	}
	if out, err := env.Exec(t.Context(), ns, pod.Name, "ping", "-c", "1", "-W", "3", "-I", "net3", extHost); err != nil {
		t.Fatalf("no ping over the hot-plugged net3: %v\n%s", err, out)
	}
	waitEvent(t, env, ns, pod.Name, "AddedInterface", "net3")
	net1, net2, net3 := addressOf(t, &after, "net1"), addressOf(t, &after, "net2"), addressOf(t, &after, "net3")
	poll.Until(t, podLimit, "the store holds the pod's three addresses", func() (bool, string) {
		held := allocations(t, env, network)
		return slices.Equal(held, sorted(net1, net2, net3)), fmt.Sprintf("the store holds %v, the pod %v", held, []string{net1, net2, net3})
	})

	annotateNetworks(t, env, ns, pod.Name, "blue,blue")
	after = waitInterfaces(t, env, ns, pod.Name, "eth0", "net2", "net3")
	if a2, a3 := addressOf(t, &after, "net2"), addressOf(t, &after, "net3"); a2 != net2 || a3 != net3 {
		t.Fatalf("removing net1 changed net2 %s → %s, net3 %s → %s", net2, a2, net3, a3)
	}
	if out, err := env.Exec(t.Context(), ns, pod.Name, "ip", "link", "show", "net1"); err == nil {
		t.Fatalf("net1 is still in the pod after its removal:\n%s", out)
	}
	waitEvent(t, env, ns, pod.Name, "RemovedInterface", "net1")
	poll.Until(t, podLimit, "net1's address is back in the pool", func() (bool, string) {
		held := allocations(t, env, network)
		return slices.Equal(held, sorted(net2, net3)), fmt.Sprintf("the store holds %v", held)
	})

	env.Kubectl(t, "-n", ns, "scale", "deployment/hp", "--replicas=0")
	exactPods(t, env, ns, "app=hp", 0)
	poll.Until(t, podLimit, "every address is freed with the pod", func() (bool, string) {
		held := allocations(t, env, network)
		return len(held) == 0, fmt.Sprintf("the store holds %v", held)
	})
	if left := nodeRecords(t, string(pod.UID)); len(left) > 0 {
		t.Fatalf("records left on the nodes: %v", left)
	}
}

// sorted orders addresses as allocations does.
func sorted(s ...string) []string {
	slices.SortFunc(s, func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	return s
}

// A hot-plug whose plugin does not exist: the pod keeps its interfaces
// and network-status, and a warning event names the error. Once the NAD is
// fixed, the next change of the annotation attaches it.
func TestHotplugFailureThenFixed(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "hotplugfail")
	env.CreateNAD(t, ns, "blue", ipv6NAD(ns+"-net", "2001:db8:e1::/120"))
	env.CreateNAD(t, ns, "broken", `{"cniVersion":"0.3.1","type":"no-such-plugin"}`)
	env.ApplyYAML(t, ns, toolboxPod("fp", map[string]string{networksAnnotation: "blue"}))
	pod := runningPod(t, env, ns, "fp")
	pod = waitInterfaces(t, env, ns, "fp", "eth0", "net1")
	before := pod.Annotations["k8s.v1.cni.cncf.io/network-status"]

	annotateNetworks(t, env, ns, "fp", "blue,broken")
	waitEvent(t, env, ns, "fp", "HotplugFailed", "no-such-plugin")
	now, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), "fp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := now.Annotations["k8s.v1.cni.cncf.io/network-status"]; got != before {
		t.Fatalf("a failed hot-plug changed network-status:\n%s\nwas\n%s", got, before)
	}
	if out, err := env.Exec(t.Context(), ns, "fp", "ip", "link", "show", "net2"); err == nil {
		t.Fatalf("the failed attachment's net2 is in the pod:\n%s", out)
	}

	env.DeleteNAD(t, ns, "broken")
	env.CreateNAD(t, ns, "broken", ipv6NAD(ns+"-fixed", "2001:db8:e2::/120"))
	annotateNetworks(t, env, ns, "fp", "blue, broken")
	waitInterfaces(t, env, ns, "fp", "eth0", "net1", "net2")
}

// Races: the pod is deleted while a hot-plug runs, and plexusd is
// restarted while another runs. Afterwards nothing is leaked: no
// address, no record; the pod that lived has what its annotation asks.
func TestHotplugRaces(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "hotplugrace")
	network := ns + "-net"
	env.CreateNAD(t, ns, "v6", ipv6NAD(network, "2001:db8:e3::/116"))

	env.ApplyYAML(t, ns, toolboxPod("goner", map[string]string{networksAnnotation: "v6"}))
	goner := runningPod(t, env, ns, "goner")
	annotateNetworks(t, env, ns, "goner", "v6,v6,v6,v6")
	env.Kubectl(t, "-n", ns, "delete", "pod", "goner", "--wait=true")

	env.ApplyYAML(t, ns, toolboxPod("survivor", map[string]string{networksAnnotation: "v6"}))
	survivor := runningPod(t, env, ns, "survivor")
	annotateNetworks(t, env, ns, "survivor", "v6,v6,v6")
	old := deletePlexusd(t.Context(), t, env, survivor.Spec.NodeName)
	poll.Until(t, installLimit, "plexusd restarted on "+survivor.Spec.NodeName, func() (bool, string) {
		p, why := plexusdOn(t.Context(), env, survivor.Spec.NodeName)
		return p != nil && p.UID != old.UID, why
	})
	waitPlexusdReady(t.Context(), t, env, survivor.Spec.NodeName, true)
	after := waitInterfaces(t, env, ns, "survivor", "eth0", "net1", "net2", "net3")
	for _, ifname := range []string{"net1", "net2", "net3"} {
		if out, err := env.Exec(t.Context(), ns, "survivor", "ip", "link", "show", ifname); err != nil {
			t.Errorf("survivor has no %s after plexusd's restart: %v %s", ifname, err, out)
		}
	}
	want := sorted(addressOf(t, &after, "net1"), addressOf(t, &after, "net2"), addressOf(t, &after, "net3"))
	poll.Until(t, podLimit, "the store holds the survivor's addresses only", func() (bool, string) {
		held := allocations(t, env, network)
		return slices.Equal(held, want), fmt.Sprintf("holds %v, want %v", held, want)
	})
	if left := nodeRecords(t, string(goner.UID)); len(left) > 0 {
		t.Errorf("the deleted pod's records stay on the nodes: %v", left)
	}

	env.Kubectl(t, "-n", ns, "delete", "pod", "survivor", "--wait=true")
	poll.Until(t, podLimit, "every address freed", func() (bool, string) {
		held := allocations(t, env, network)
		return len(held) == 0, fmt.Sprintf("holds %v", held)
	})
	if left := nodeRecords(t, string(survivor.UID)); len(left) > 0 {
		t.Errorf("the survivor's records stay on the nodes: %v", left)
	}
}

// The time from a running pod's annotation change to its new interface
// in network-status, over 50 hot-plugs (each followed by an untimed
// removal).
func TestBenchHotplugLatency(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") == "" {
		t.Skip("a benchmark: run by `make bench` (PLEXUS_BENCH=1)")
	}
	env := cluster(t)
	ns := env.Namespace(t, "hotplugbench")
	env.CreateNAD(t, ns, "v6", ipv6NAD(ns+"-net", "2001:db8:e4::/116"))
	env.ApplyYAML(t, ns, toolboxPod("hb", map[string]string{networksAnnotation: "v6"}))
	runningPod(t, env, ns, "hb")
	var took []float64
	for range 50 {
		start := time.Now()
		annotateNetworks(t, env, ns, "hb", "v6,v6")
		waitInterfacesFast(t, env, ns, "hb", 2)
		took = append(took, float64(time.Since(start).Milliseconds()))
		annotateNetworks(t, env, ns, "hb", "v6")
		waitInterfacesFast(t, env, ns, "hb", 1)
	}
	slices.Sort(took)
	t.Logf("BENCH hot-plug: annotation change to interface in network-status over %d changes: p50 %.0f ms, p99 %.0f ms (kubectl annotate included)",
		len(took), took[len(took)/2], took[len(took)*99/100])
}

// waitInterfacesFast waits, polling every 20 ms, until the pod has n
// secondary interfaces in network-status.
func waitInterfacesFast(t *testing.T, env *testbed.Env, ns, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(podLimit)
	for time.Now().Before(deadline) {
		p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err == nil {
			if raw := p.Annotations["k8s.v1.cni.cncf.io/network-status"]; strings.Count(raw, `"interface"`) == n+1 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s never had %d secondary interfaces", ns, name, n)
}
