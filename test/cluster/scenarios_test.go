package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

// S3 on real pods: a NetworkDefinition (plexus's additionalNetworks)
// renders the NAD in its namespace; a pod there gets the static address on
// net1 and reaches the gateway; removing the definition removes the NAD.
func TestS3NetworkDefinitionStatic(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "s3")
	env.ApplyYAML(t, ns, fmt.Sprintf(`apiVersion: plexus.dev/v1alpha1
kind: NetworkDefinition
metadata: {name: %[1]s-macvlan}
spec:
  type: SimpleMacvlan
  name: macvlan-network
  namespace: %[1]s
  simpleMacvlanConfig:
    master: %[2]s
    mode: Bridge
    ipamConfig:
      type: Static
      staticIPAMConfig:
        addresses: [{address: 198.51.100.120/26, gateway: %[3]s}]
`, ns, nodeUplink, extHost))
	nads := env.Dynamic.Resource(testbed.NADResource()).Namespace(ns)
	poll.Until(t, podLimit, "the NetworkDefinition's NAD appears in "+ns, func() (bool, string) {
		_, err := nads.Get(t.Context(), "macvlan-network", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})

	env.ApplyYAML(t, ns, toolboxPod("tomcat", map[string]string{networksAnnotation: "macvlan-network"}))
	p := runningPod(t, env, ns, "tomcat")
	if got := net1Addresses(t, []corev1.Pod{p}); len(got) != 1 || got[0] != "198.51.100.120" {
		t.Fatalf("net1 = %v, want the static 198.51.100.120", got)
	}
	if out, err := env.Exec(t.Context(), ns, p.Name, "ip", "-o", "addr", "show", "net1"); err != nil || !strings.Contains(out, "198.51.100.120/26") {
		t.Fatalf("`ip addr show net1` = %q, %v; want 198.51.100.120/26", out, err)
	}
	if out, err := env.Exec(t.Context(), ns, p.Name, "ping", "-c", "1", "-W", "3", "-I", "net1", extHost); err != nil {
		t.Fatalf("the pod cannot reach the gateway %s over net1: %v\n%s", extHost, err, out)
	}

	gvr := v1.SchemeGroupVersion.WithResource(v1.ResourceNetworkDefinitions)
	if err := env.Dynamic.Resource(gvr).Delete(t.Context(), ns+"-macvlan", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting the NetworkDefinition: %v", err)
	}
	poll.Until(t, podLimit, "removing the NetworkDefinition removes its NAD", func() (bool, string) {
		_, err := nads.Get(t.Context(), "macvlan-network", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// S5 on a real pod: the default-network annotation makes eth0 a macvlan
// instead of the cluster network, and the networks annotation adds net1 on
// the same network. The pod's IP is eth0's macvlan address and both reach
// the host on the segment.
func TestS5DefaultNetworkOverride(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "s5")
	env.CreateNAD(t, ns, "macvlan-standalone", fmt.Sprintf(`{"cniVersion":"0.3.1","type":"macvlan","master":%q,
		"mode":"bridge","ipam":{"type":"host-local","subnet":%q,"rangeStart":"198.51.100.116",
		"rangeEnd":"198.51.100.119","dataDir":%q}}`, nodeUplink, macvlanCIDR, sharedHostLocalDir(t)))
	ref := ns + "/macvlan-standalone"
	env.ApplyYAML(t, ns, toolboxPod("standalone", map[string]string{
		"v1.multus-cni.io/default-network": ref,
		networksAnnotation:                 ref,
	}))
	p := runningPod(t, env, ns, "standalone")
	st := statusOf(t, &p)
	if len(st) != 2 || !st[0].Default || st[0].Name != ref || st[0].Interface != "eth0" ||
		st[1].Name != ref || st[1].Interface != "net1" || st[1].Default {
		t.Fatalf("network-status = %+v, want %s as the default network on eth0, then again on net1", st, ref)
	}
	if len(st[0].IPs) != 1 || p.Status.PodIP != st[0].IPs[0] {
		t.Fatalf("pod IP %q, eth0 addresses %v: want the pod IP to be eth0's macvlan address", p.Status.PodIP, st[0].IPs)
	}
	for _, ifname := range []string{"eth0", "net1"} {
		if out, err := env.Exec(t.Context(), ns, p.Name, "ping", "-c", "1", "-W", "3", "-I", ifname, extHost); err != nil {
			t.Errorf("no ping to %s over %s: %v\n%s", extHost, ifname, err, out)
		}
	}
}

// A NAD whose config is a conflist (macvlan, then tuning) runs as a chain
// on a real pod: tuning's MAC and MTU are on net1.
func TestConflistNAD(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "chain")
	env.CreateNAD(t, ns, "tuned", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"tuned","plugins":[
		{"type":"macvlan","master":%q,"mode":"bridge","ipam":{"type":"host-local","subnet":%q,
		 "rangeStart":"198.51.100.121","rangeEnd":"198.51.100.123","dataDir":%q}},
		{"type":"tuning","mac":"c2:b0:57:49:47:f1","mtu":1400}]}`, nodeUplink, macvlanCIDR, sharedHostLocalDir(t)))
	env.ApplyYAML(t, ns, toolboxPod("chained", map[string]string{networksAnnotation: "tuned"}))
	p := runningPod(t, env, ns, "chained")
	out, err := env.Exec(t.Context(), ns, p.Name, "ip", "-o", "link", "show", "net1")
	if err != nil || !strings.Contains(out, "mtu 1400") || !strings.Contains(out, "c2:b0:57:49:47:f1") {
		t.Fatalf("`ip link show net1` = %q, %v; want tuning's MTU 1400 and MAC c2:b0:57:49:47:f1", out, err)
	}
	if st := statusOf(t, &p); len(st) != 2 || st[1].MAC != "c2:b0:57:49:47:f1" {
		t.Errorf("network-status = %+v, want net1 with tuning's MAC", st)
	}
}

// Cross-namespace references with namespaceIsolation on, set as a user
// does in plexusd's ConfigMap: a pod may use a NAD of "default" (the global
// namespace unless globalNamespaces says otherwise, as in Multus) but not one
// of another namespace; that pod's event
// names the rule, and it gets no interface. The ConfigMap is restored at the
// end.
func TestCrossNamespaceIsolation(t *testing.T) {
	env := cluster(t)
	enableIsolation(t, env)
	owner := env.Namespace(t, "iso-owner")
	user := env.Namespace(t, "iso-user")
	env.CreateNAD(t, owner, "private", macvlanNAD(t))
	global := "iso-global-" + strings.TrimPrefix(user, "iso-user-")
	env.CreateNAD(t, "default", global, macvlanNAD(t))
	t.Cleanup(func() {
		err := env.Dynamic.Resource(testbed.NADResource()).Namespace("default").Delete(context.Background(), global, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting NAD default/%s: %v", global, err)
		}
	})

	env.ApplyYAML(t, user, toolboxPod("uses-global", map[string]string{networksAnnotation: "default/" + global}))
	p := runningPod(t, env, user, "uses-global")
	if st := statusOf(t, &p); len(st) != 2 || st[1].Name != "default/"+global {
		t.Fatalf("network-status = %+v, want net1 on default/%s", st, global)
	}

	env.ApplyYAML(t, user, toolboxPod("crosses", map[string]string{networksAnnotation: owner + "/private"}))
	poll.Until(t, podLimit, "the kubelet reports the isolation error", func() (bool, string) {
		for _, e := range podEvents(t, env, user, "crosses") {
			if e.Reason == "FailedCreatePodSandBox" && strings.Contains(e.Message, "namespaceIsolation") {
				return true, ""
			}
		}
		return false, "no FailedCreatePodSandBox event naming namespaceIsolation yet"
	})
	if p, err := env.Client.CoreV1().Pods(user).Get(t.Context(), "crosses", metav1.GetOptions{}); err != nil || p.Status.Phase == corev1.PodRunning {
		t.Fatalf("pod crossing into %s: %v, phase %v; want it held back", owner, err, p.Status.Phase)
	}
}

// enableIsolation turns namespaceIsolation on in plexusd's ConfigMap and
// restarts plexusd, as a user does; the test's end restores both.
func enableIsolation(t *testing.T, env *testbed.Env) {
	t.Helper()
	cms := env.Client.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(t.Context(), "plexusd-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orig := cm.Data["plexusd.json"]
	const key = `"pluginConfig": {`
	if !strings.Contains(orig, key) {
		t.Fatalf("plexusd-config has no %s", key)
	}
	restart := func(ctx context.Context) error {
		if _, err := env.TryKubectl(ctx, "-n", "kube-system", "rollout", "restart", "daemonset/plexusd"); err != nil {
			return err
		}
		_, err := env.TryKubectl(ctx, "-n", "kube-system", "rollout", "status", "daemonset/plexusd", "--timeout=3m")
		return err
	}
	cm.Data["plexusd.json"] = strings.Replace(orig, key, key+"\n        \"namespaceIsolation\": true,", 1)
	if _, err := cms.Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() has ended by now.
		ctx, cancel := context.WithTimeout(context.Background(), installLimit)
		defer cancel()
		cm, err := cms.Get(ctx, "plexusd-config", metav1.GetOptions{})
		if err == nil {
			cm.Data["plexusd.json"] = orig
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err == nil {
			err = restart(ctx)
		}
		if err != nil {
			t.Errorf("restoring plexusd-config and plexusd: %v", err)
		}
	})
	if err := restart(t.Context()); err != nil {
		t.Fatalf("restarting plexusd with namespaceIsolation: %v", err)
	}
}

const networksAnnotation = "k8s.v1.cni.cncf.io/networks"

// toolboxPod is a bare pod of the toolbox image with annotations.
func toolboxPod(name string, annotations map[string]string) string {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ann strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&ann, "\n    %s: %q", k, annotations[k])
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations:%s
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: toolbox
      image: %s
      imagePullPolicy: IfNotPresent
`, name, ann.String(), toolbox)
}

// runningPod waits until the pod ns/name is Running and returns it.
func runningPod(t *testing.T, env *testbed.Env, ns, name string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	poll.Until(t, podLimit, fmt.Sprintf("pod %s/%s is Running", ns, name), func() (bool, string) {
		p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = *p
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	return pod
}
