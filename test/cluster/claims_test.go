package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// ipamClaim is an IPAMClaim for network's interface.
func ipamClaim(name, network, ifname string) string {
	return fmt.Sprintf(`apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata: {name: %s}
spec: {network: %q, interface: %q}
`, name, network, ifname)
}

// claimPod is a VM-style pod on node whose net1 names claim.
func claimPod(name, node, claim string) string {
	return podOnNode(name, node, fmt.Sprintf(`[{"name":"vmnet","ipam-claim-reference":%q}]`, claim))
}

// podOnNode is a toolbox pod on node with the networks annotation networks.
func podOnNode(name, node, networks string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations:
    k8s.v1.cni.cncf.io/networks: %s
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
    - name: toolbox
      image: %s
      imagePullPolicy: IfNotPresent
`, name, strconv.Quote(networks), node, toolbox)
}

// claimIPs reads a claim's status.ips.
func claimIPs(t *testing.T, env *testbed.Env, ns, name string) string {
	t.Helper()
	out, err := env.TryKubectl(t.Context(), "-n", ns, "get", "ipamclaim", name, "-o", "jsonpath={.status.ips}")
	if err != nil {
		t.Fatalf("reading IPAMClaim %s: %v %s", name, err, out)
	}
	return out
}

// IPAMClaims on real pods: a VM-style pod's address is written to its
// claim and comes back when the pod is recreated on the other node; two
// claims on one pool get distinct addresses; a bad reference fails the pod
// naming the field; deleting the claim frees the address.
func TestIPAMClaimKeepsTheAddressAcrossNodes(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "claims")
	network := ns + "-net"
	env.CreateNAD(t, ns, "vmnet", ipv6NAD(network, "2001:db8:e6::/120"))
	env.ApplyYAML(t, ns, ipamClaim("vm1", network, "net1"))
	env.ApplyYAML(t, ns, ipamClaim("vm2", network, "net1"))
	env.ApplyYAML(t, ns, ipamClaim("wrong-if", network, "net5"))

	env.ApplyYAML(t, ns, claimPod("launcher-a", "node-1", "vm1"))
	a := runningPod(t, env, ns, "launcher-a")
	addr := addressOf(t, &a, "net1")
	if got := claimIPs(t, env, ns, "vm1"); !strings.Contains(got, addr) {
		t.Fatalf("IPAMClaim vm1 status.ips = %s, want %s", got, addr)
	}
	env.Kubectl(t, "-n", ns, "delete", "pod", "launcher-a", "--wait=true")
	if held := allocations(t, env, network); !slices.Equal(held, []string{addr}) {
		t.Fatalf("with the pod gone the store holds %v, want the claim's %s kept", held, addr)
	}

	env.ApplyYAML(t, ns, claimPod("launcher-b", "node-2", "vm1"))
	b := runningPod(t, env, ns, "launcher-b")
	if got := addressOf(t, &b, "net1"); got != addr {
		t.Fatalf("the VM's pod on node-2 got %s, want the claim's %s", got, addr)
	}
	env.ApplyYAML(t, ns, claimPod("other", "node-1", "vm2"))
	o := runningPod(t, env, ns, "other")
	if other := addressOf(t, &o, "net1"); other == addr {
		t.Fatalf("two claims share %s", addr)
	}

	for name, want := range map[string][]string{
		"missing":  {"ipam-claim-reference", "IPAMClaim " + ns + "/missing not found"},
		"wrong-if": {"ipam-claim-reference", `interface "net5"`, `interface "net1"`, network},
	} {
		env.ApplyYAML(t, ns, claimPod("bad-"+name, "node-1", name))
		poll.Until(t, podLimit, "the kubelet reports the bad claim "+name, func() (bool, string) {
			for _, e := range podEvents(t, env, ns, "bad-"+name) {
				if e.Reason != "FailedCreatePodSandBox" {
					continue
				}
				ok := true
				for _, w := range want {
					ok = ok && strings.Contains(e.Message, w)
				}
				if ok {
					return true, ""
				}
				return false, e.Message
			}
			return false, "no FailedCreatePodSandBox event yet"
		})
		p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), "bad-"+name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			t.Fatalf("pod bad-%s runs with a bad claim", name)
		}
		env.Kubectl(t, "-n", ns, "delete", "pod", "bad-"+name, "--wait=true")
	}

	env.Kubectl(t, "-n", ns, "delete", "pod", "launcher-b", "--wait=true")
	env.Kubectl(t, "-n", ns, "delete", "ipamclaim", "vm1", "--wait=true")
	poll.Until(t, installLimit, "the deleted claim's address is back in the pool", func() (bool, string) {
		held := allocations(t, env, network)
		return !slices.Contains(held, addr), fmt.Sprintf("the store holds %v", held)
	})
}
