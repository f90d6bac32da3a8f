package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// The node switched from Multus, and what the test puts on it.
const (
	switchNode   = "node-2"
	plexusdLabel = "app.kubernetes.io/component=plexusd"
	plexusdCM    = "plexusd-config"
	// multusConf is a thin-Multus-shaped primary configuration, first in the
	// node's conf dir, wrapping the node's own cluster network. No Multus
	// binary exists here, so /opt/cni/bin/multus-shim is a copy of plexus
	// (which reads Multus's keys): pods keep getting their networks from
	// "Multus" until the take-over, as on a real node.
	multusConf = `{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim",
 "clusterNetwork":"/etc/cni/net.d/10-cluster.conflist","multusNamespace":"kube-system",
 "kubeconfig":"/etc/cni/net.d/plexus.d/plexus.kubeconfig","cniDir":"/var/lib/cni/multus"}`
)

// TestSwitchFromMultus follows docs/migrate-multus.md on node-2: with a
// Multus configuration first in the node's conf dir, plexusd goes unready
// and records PrimaryIsMetaPlugin on the Node; then the user turns on
// takeOverMultus in plexusd's ConfigMap and restarts plexusd on that node,
// while pods with a secondary network keep being created there. plexusd
// takes over (TookOverMultus), the runtime uses plexus, and every pod ends
// Running with net1. The node is put back as it was at the end.
func TestSwitchFromMultus(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "multus")
	sh := nodeShell(t, env, ns, switchNode)
	orig := plexusdConfig(t, env)
	t.Cleanup(func() { restoreNode(t, env, sh, orig) })

	start := metav1.Now()
	sh("cp /host/opt/cni/bin/plexus /host/opt/cni/bin/multus-shim && " +
		"printf '%s' '" + multusConf + "' > /host/etc/cni/net.d/.00-multus.conf.tmp && " +
		"mv /host/etc/cni/net.d/.00-multus.conf.tmp /host/etc/cni/net.d/00-multus.conf")
	waitNodeEvent(t, env, switchNode, "PrimaryIsMetaPlugin", start)
	waitPlexusdReady(t.Context(), t, env, switchNode, false)

	// Pods keep being created on the node, one when the last has started
	// (or failed a sandbox, which the kubelet retries), from before the
	// take-over is turned on until a few after plexus is in use.
	env.CreateNAD(t, ns, "macvlan-conf", macvlanNAD(t))
	var names []string
	var switchedAt, restartedAt = -1, -1
	var old *corev1.Pod
	for i := 0; switchedAt < 0 || i < switchedAt+3; i++ {
		if i >= 60 {
			t.Fatalf("plexusd did not take node %s over while 60 pods were created", switchNode)
		}
		name := fmt.Sprintf("churn-%d", i)
		env.ApplyYAML(t, ns, churnPod(name, switchNode, "macvlan-conf"))
		names = append(names, name)
		waitStarted(t, env, ns, name)
		switch {
		case i == 1: // the user's step: takeOverMultus on, plexusd restarted on the node
			start = metav1.Now()
			setTakeOver(t, env, orig)
			old = deletePlexusd(t.Context(), t, env, switchNode)
			restartedAt = i
		case restartedAt >= 0 && switchedAt < 0 && tookOver(t, env, switchNode, old, start):
			switchedAt = i
		}
	}
	t.Logf("%d pods created; the take-over was started after pod %d and seen after pod %d", len(names), restartedAt, switchedAt)
	waitPlexusdReady(t.Context(), t, env, switchNode, true)
	if out := sh("ls /host/etc/cni/net.d"); !strings.Contains(out, "00-multus.conf.moved-by-plexus") ||
		strings.Contains(out, "00-multus.conf\n") || !strings.HasPrefix(out, "00-00-plexus.conflist\n") {
		t.Errorf("conf dir after the take-over:\n%s\nwant 00-00-plexus.conflist first and 00-multus.conf moved aside", out)
	}
	for _, name := range names {
		p := runningPod(t, env, ns, name)
		st := statusOf(t, &p)
		if len(st) != 2 || st[0].Interface != "eth0" || st[1].Interface != "net1" || st[1].Name != ns+"/macvlan-conf" {
			t.Errorf("pod %s (node %s) network-status = %+v, want eth0 and net1 on %s/macvlan-conf", name, p.Spec.NodeName, st, ns)
		}
	}
}

// nodeShell starts a host-network pod on node (no CNI involved) that sees
// the node's /etc/cni/net.d and /opt/cni/bin under /host, and returns a
// function running a shell command there.
func nodeShell(t *testing.T, env *testbed.Env, ns, node string) func(string) string {
	t.Helper()
	env.ApplyYAML(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: node-shell, labels: {app: node-shell}}
spec:
  nodeName: %s
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  tolerations: [{operator: Exists}]
  containers:
    - name: toolbox
      image: %s
      imagePullPolicy: IfNotPresent
      securityContext: {privileged: true}
      volumeMounts:
        - {name: conf, mountPath: /host/etc/cni/net.d}
        - {name: bin, mountPath: /host/opt/cni/bin}
  volumes:
    - {name: conf, hostPath: {path: /etc/cni/net.d}}
    - {name: bin, hostPath: {path: /opt/cni/bin}}
`, node, toolbox))
	runningPods(t, env, ns, "app=node-shell", 1)
	return func(cmd string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := env.Exec(ctx, ns, "node-shell", "sh", "-c", cmd)
		if err != nil {
			t.Fatalf("on %s: %s: %v\n%s", node, cmd, err, out)
		}
		return out
	}
}

// restoreNode puts node-2 back: the Multus stand-in and the take-over's
// files removed, plexusd's ConfigMap as it was, plexusd restarted on the
// node and ready with 00-plexus.conflist. It runs as a cleanup, when
// t.Context() has ended.
func restoreNode(t *testing.T, env *testbed.Env, sh func(string) string, orig string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*installLimit)
	defer cancel()
	cms := env.Client.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, plexusdCM, metav1.GetOptions{})
	if err == nil {
		cm.Data["plexusd.json"] = orig
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("restoring ConfigMap %s: %v", plexusdCM, err)
	}
	// The take-over's plexusd rewrites its file while it runs: stop it
	// before removing the files. Its successor (take-over off) is unready
	// while 00-00-plexus.conflist shadows its own file, and ready once that
	// is gone.
	old := deletePlexusd(ctx, t, env, switchNode)
	poll.Until(t, installLimit, "the take-over's plexusd on "+switchNode+" is gone", func() (bool, string) {
		_, err := env.Client.CoreV1().Pods("kube-system").Get(ctx, old.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	sh("rm -f /host/etc/cni/net.d/00-multus.conf /host/etc/cni/net.d/00-multus.conf*.moved-by-plexus " +
		"/host/etc/cni/net.d/00-00-plexus.conflist /host/opt/cni/bin/multus-shim")
	poll.Until(t, installLimit, "a new plexusd pod on "+switchNode, func() (bool, string) {
		p, why := plexusdOn(ctx, env, switchNode)
		return p != nil && p.UID != old.UID, why
	})
	waitPlexusdReady(ctx, t, env, switchNode, true)
}

// plexusdConfig returns plexusd.json of plexusd's ConfigMap.
func plexusdConfig(t *testing.T, env *testbed.Env) string {
	t.Helper()
	cm, err := env.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), plexusdCM, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", plexusdCM, err)
	}
	return cm.Data["plexusd.json"]
}

// setTakeOver sets "takeOverMultus": true in plexusd's ConfigMap, as a
// user does (kubectl edit): the running plexusd pods are not restarted by it.
func setTakeOver(t *testing.T, env *testbed.Env, orig string) {
	t.Helper()
	var conf map[string]any
	if err := json.Unmarshal([]byte(orig), &conf); err != nil {
		t.Fatalf("ConfigMap %s plexusd.json: %v", plexusdCM, err)
	}
	conf["takeOverMultus"] = true
	raw, _ := json.MarshalIndent(conf, "", "  ")
	cms := env.Client.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(t.Context(), plexusdCM, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", plexusdCM, err)
	}
	cm.Data["plexusd.json"] = string(raw)
	if _, err := cms.Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating ConfigMap %s: %v", plexusdCM, err)
	}
}

// plexusdOn returns the plexusd pod on node (not being deleted).
func plexusdOn(ctx context.Context, env *testbed.Env, node string) (*corev1.Pod, string) {
	list, err := env.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
		LabelSelector: plexusdLabel, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, err.Error()
	}
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp == nil {
			return &list.Items[i], ""
		}
	}
	return nil, fmt.Sprintf("no plexusd pod on %s", node)
}

// deletePlexusd deletes plexusd's pod on node (kubectl delete pod) and
// returns it.
func deletePlexusd(ctx context.Context, t *testing.T, env *testbed.Env, node string) *corev1.Pod {
	t.Helper()
	var old *corev1.Pod
	poll.Until(t, podLimit, "a plexusd pod on "+node, func() (bool, string) {
		var why string
		old, why = plexusdOn(ctx, env, node)
		return old != nil, why
	})
	if err := env.Client.CoreV1().Pods("kube-system").Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting %s: %v", old.Name, err)
	}
	return old
}

// waitPlexusdReady waits until plexusd's pod on node has the Ready
// condition ready (its /readyz probe).
func waitPlexusdReady(ctx context.Context, t *testing.T, env *testbed.Env, node string, ready bool) {
	t.Helper()
	poll.Until(t, installLimit, fmt.Sprintf("plexusd on %s Ready=%v", node, ready), func() (bool, string) {
		p, why := plexusdOn(ctx, env, node)
		if p == nil {
			return false, why
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return (c.Status == corev1.ConditionTrue) == ready, fmt.Sprintf("%s Ready=%s", p.Name, c.Status)
			}
		}
		return false, p.Name + " has no Ready condition"
	})
}

// waitNodeEvent waits for an event of reason on node since a time.
func waitNodeEvent(t *testing.T, env *testbed.Env, node, reason string, since metav1.Time) {
	t.Helper()
	poll.Until(t, installLimit, fmt.Sprintf("event %s on Node %s", reason, node), func() (bool, string) {
		list, err := env.Client.CoreV1().Events(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + node})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Reason == reason && !before(e.LastTimestamp, since) {
				t.Logf("Node %s: %s %s: %s", node, e.Type, e.Reason, e.Message)
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, strings.Join(seen, " ")
	})
}

// tookOver reports (without waiting) that a new plexusd pod replaced old
// on node and recorded TookOverMultus since start.
func tookOver(t *testing.T, env *testbed.Env, node string, old *corev1.Pod, start metav1.Time) bool {
	t.Helper()
	if p, _ := plexusdOn(t.Context(), env, node); p == nil || p.UID == old.UID {
		return false
	}
	list, err := env.Client.CoreV1().Events(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + node})
	if err != nil {
		t.Fatalf("events of Node %s: %v", node, err)
	}
	for _, e := range list.Items {
		if e.Reason == "TookOverMultus" && !before(e.LastTimestamp, start) {
			t.Logf("Node %s: %s: %s", node, e.Reason, e.Message)
			return true
		}
	}
	return false
}

// waitStarted waits until a pod is Running or the kubelet reported a
// failed sandbox for it (it then retries; the test checks the end state).
func waitStarted(t *testing.T, env *testbed.Env, ns, name string) {
	poll.Until(t, podLimit, "pod "+name+" started or failed a sandbox", func() (bool, string) {
		p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if p.Status.Phase == corev1.PodRunning {
			return true, ""
		}
		for _, e := range podEvents(t, env, ns, name) {
			if e.Reason == "FailedCreatePodSandBox" {
				return true, ""
			}
		}
		return false, string(p.Status.Phase)
	})
}

func churnPod(name, node, network string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations: {k8s.v1.cni.cncf.io/networks: %s}
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  terminationGracePeriodSeconds: 1
  containers:
    - {name: toolbox, image: %s, imagePullPolicy: IfNotPresent}
`, name, network, node, toolbox)
}

// before reports that an event's timestamp t is before since. Event
// timestamps are whole seconds, so since is too: an event recorded in the
// same second as since, after it, is not before it.
func before(t, since metav1.Time) bool {
	return t.Time.Before(since.Time.Truncate(time.Second))
}
