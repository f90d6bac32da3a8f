package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// ipv6NAD is a macvlan NAD with plexus-ipam on an IPv6 range (the
// disruption tests need no host on the segment, only addresses that must
// not leak).
func ipv6NAD(network, rng string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"macvlan","master":%q,"mode":"bridge",
		"ipam":{"type":"plexus-ipam","range":%q}}`, network, nodeUplink, rng)
}

// plexusd's pods are deleted (on both nodes) while a Deployment's pods are
// being created: once the DaemonSet has brought plexusd back, every pod is
// Running with net1, no address is on two pods, and the store holds exactly
// the running pods' addresses; scaled to zero, it holds none.
func TestPlexusdDeletedDuringCreates(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "churn")
	network := ns + "-net"
	env.CreateNAD(t, ns, "v6", ipv6NAD(network, "2001:db8:d1::/116"))
	env.ApplyYAML(t, ns, deployment("churn", 0, "v6"))

	env.Kubectl(t, "-n", ns, "scale", "deployment/churn", "--replicas=6")
	env.Kubectl(t, "-n", "kube-system", "delete", "pod", "-l", "app.kubernetes.io/component=plexusd", "--wait=false")
	pods := exactPods(t, env, ns, "app=churn", 6)
	got := net1Addresses(t, pods)
	if held := allocations(t, env, network); !slices.Equal(held, got) {
		t.Fatalf("the store holds %v for %s; the 6 running pods hold %v", held, network, got)
	}
	env.Kubectl(t, "-n", "kube-system", "rollout", "status", "daemonset/plexusd", "--timeout=3m")

	env.Kubectl(t, "-n", ns, "scale", "deployment/churn", "--replicas=0")
	exactPods(t, env, ns, "app=churn", 0)
	if held := allocations(t, env, network); len(held) != 0 {
		t.Fatalf("after scaling to 0 the store still holds %v for %s", held, network)
	}
}

// A node's kubelet and containerd are restarted (containers keep running):
// the pod that was running keeps its interfaces and address, and a pod
// deleted while both were down is cleaned up once they are back: its
// object goes away and its address is freed.
func TestRuntimeRestart(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "restart")
	network := ns + "-net"
	env.CreateNAD(t, ns, "v6", ipv6NAD(network, "2001:db8:d2::/116"))
	const node = "node-2"
	for _, name := range []string{"keeper", "goner"} {
		env.ApplyYAML(t, ns, strings.Replace(toolboxPod(name, map[string]string{networksAnnotation: "v6"}),
			"spec:\n", "spec:\n  nodeSelector: {kubernetes.io/hostname: "+node+"}\n", 1))
	}
	keeper, goner := runningPod(t, env, ns, "keeper"), runningPod(t, env, ns, "goner")
	keep := net1Addresses(t, []corev1.Pod{keeper})[0]

	hook := fmt.Sprintf("%s --kubeconfig=%s -n %s delete pod goner --wait=false",
		filepath.Join(testbed.BinDir(), "kubectl"), env.Kubeconfig, ns)
	ctx, cancel := context.WithTimeout(t.Context(), installLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(testbed.Root(), "hack", "cluster.sh"),
		"restart-runtime", node, "--stopped-hook", hook).CombinedOutput()
	if err != nil {
		t.Fatalf("restarting %s's kubelet and containerd: %v\n%s", node, err, out)
	}

	poll.Until(t, podLimit, "the pod deleted while the runtime was down is gone", func() (bool, string) {
		p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), "goner", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return p.UID != goner.UID, "still there: " + string(p.Status.Phase)
	})
	after := runningPod(t, env, ns, "keeper")
	if after.UID != keeper.UID {
		t.Fatalf("keeper was replaced (UID %s, was %s)", after.UID, keeper.UID)
	}
	if out, err := env.Exec(t.Context(), ns, "keeper", "ip", "-o", "addr", "show", "net1"); err != nil || !strings.Contains(out, keep+"/116") {
		t.Fatalf("after the restart keeper's net1 = %q, %v; want %s/116", out, err, keep)
	}
	poll.Until(t, podLimit, "the store holds only the keeper's address", func() (bool, string) {
		held := allocations(t, env, network)
		return slices.Equal(held, []string{keep}), fmt.Sprintf("holds %v, want [%s]", held, keep)
	})
}
