package cluster

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// S2 on a real pod: the same NAD twice gives net1 and net2, two entries.
func TestS2SameNetworkTwice(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "s2")
	env.CreateNAD(t, ns, "macvlan-conf", macvlanNAD(t))
	env.ApplyYAML(t, ns, deployment("twice", 1, "macvlan-conf,macvlan-conf"))
	p := runningPods(t, env, ns, "app=twice", 1)[0]
	st := statusOf(t, &p)
	if len(st) != 3 || st[1].Interface != "net1" || st[2].Interface != "net2" ||
		st[1].Name != ns+"/macvlan-conf" || st[2].Name != ns+"/macvlan-conf" {
		t.Fatalf("network-status = %+v, want eth0, then net1 and net2 on %s/macvlan-conf", st, ns)
	}
	for _, ifname := range []string{"net1", "net2"} {
		if out, err := env.Exec(t.Context(), ns, p.Name, "ip", "link", "show", ifname); err != nil {
			t.Errorf("pod %s has no %s: %v %s", p.Name, ifname, err, out)
		}
	}
}

// A NAD naming a plugin that no node has: the pod stays ContainerCreating,
// the kubelet's event carries plexus's error naming the plugin, and nothing
// is left behind (no lease of the cluster network); once the NAD is fixed,
// the kubelet's next try starts the pod.
func TestMissingPluginThenFixed(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "fail")
	env.CreateNAD(t, ns, "broken", `{"cniVersion":"0.3.1","type":"no-such-plugin"}`)
	leasesBefore := clusterLeases(t)
	env.ApplyYAML(t, ns, deployment("broken", 1, "broken"))

	var pod corev1.Pod
	poll.Until(t, podLimit, "the kubelet reports plexus's error for the broken NAD", func() (bool, string) {
		list, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=broken"})
		if err != nil || len(list.Items) != 1 {
			return false, fmt.Sprintf("pods: %v", err)
		}
		pod = list.Items[0]
		for _, e := range podEvents(t, env, ns, pod.Name) {
			if e.Reason == "FailedCreatePodSandBox" && strings.Contains(e.Message, "no-such-plugin") {
				return true, ""
			}
		}
		return false, "no FailedCreatePodSandBox event naming no-such-plugin yet"
	})
	if pod.Status.Phase == corev1.PodRunning {
		t.Fatalf("pod %s is Running with a NAD whose plugin does not exist", pod.Name)
	}
	// Every failed try rolled back: the cluster network holds no more leases
	// than before (the kubelet keeps retrying meanwhile).
	if after := clusterLeases(t); after > leasesBefore {
		t.Errorf("cluster network leases: %d before, %d while the pod fails: a failed ADD leaked an address", leasesBefore, after)
	}

	env.DeleteNAD(t, ns, "broken")
	env.CreateNAD(t, ns, "broken", macvlanNAD(t))
	p := runningPods(t, env, ns, "app=broken", 1)[0]
	if st := statusOf(t, &p); len(st) != 2 || st[1].Interface != "net1" {
		t.Errorf("after the fix, network-status = %+v, want eth0 and net1", st)
	}
}

// macvlanNAD is S1's NAD on this cluster: the nodes' uplink as master, an
// address range in the macvlan segment, host-local leases shared by both nodes.
func macvlanNAD(t *testing.T) string {
	return fmt.Sprintf(`{"cniVersion":"0.3.1","type":"macvlan","master":%q,"mode":"bridge",
		"ipam":{"type":"host-local","subnet":%q,"rangeStart":"198.51.100.82","rangeEnd":"198.51.100.100",
		"dataDir":%q}}`, nodeUplink, macvlanCIDR, sharedHostLocalDir(t))
}

// clusterLeases counts the cluster network's host-local leases on every node
// (an observation of node state; the test drives the cluster only through
// the API).
func clusterLeases(t *testing.T) int {
	t.Helper()
	n := 0
	for _, node := range []string{"node-1", "node-2"} {
		n += len(testbed.HostLocalLeases(t, filepath.Join(testbed.ClusterDir(), "nodes", node, "overlay", "var", "upper", "lib", "cni", "networks", "cluster")))
	}
	return n
}
