package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// Prometheus can scrape what deploy/ installs: plexusd's metrics on every
// node's address (not only 127.0.0.1, not Pushgateway's 9091) and the
// controller's on its pod address; read from a pod, as Prometheus does.
func TestMetricsReachableFromPods(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "scrape")
	env.ApplyYAML(t, ns, toolboxPod("scraper", nil))
	runningPod(t, env, ns, "scraper")
	targets := map[string]string{
		"http://198.51.100.17:9743/metrics": "plexusd_cni_request_duration_seconds",
		"http://198.51.100.18:9743/metrics": "plexusd_cni_request_duration_seconds",
	}
	ctrl, err := env.Client.CoreV1().Pods("kube-system").List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=controller"})
	if err != nil || len(ctrl.Items) == 0 {
		t.Fatalf("plexus-controller pods: %v (%d)", err, len(ctrl.Items))
	}
	for _, p := range ctrl.Items {
		targets["http://"+p.Status.PodIP+":8080/metrics"] = "plexus_controller_reconcile_total"
	}
	for url, metric := range targets {
		out, err := env.Exec(t.Context(), ns, "scraper", "wget", "-q", "-O", "-", url)
		if err != nil || !strings.Contains(out, metric) {
			t.Errorf("scraping %s from a pod: %v; want %s in:\n%.400s", url, err, metric, out)
		}
	}
}

// Uninstalling as README says keeps the shared NAD CRD and every NAD:
// the DaemonSet is deleted, `plexusd uninstall` runs on each node (kubectl
// debug, no node name), `kubectl delete -k` of the install removes plexus;
// pods then start on the primary network alone. plexus is installed again
// at the end.
func TestUninstallKeepsNADs(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "uninstall")
	env.CreateNAD(t, ns, "survivor", macvlanNAD(t))
	t.Cleanup(func() {
		if err := install(); err != nil {
			t.Errorf("installing plexus again: %v", err)
		}
	})

	env.Kubectl(t, "-n", "kube-system", "delete", "daemonset", "plexusd", "--wait=true")
	image := imageRef(t)
	for _, node := range []string{"node-1", "node-2"} {
		out := env.Kubectl(t, "debug", "node/"+node, "-n", ns, "--image="+image, "--attach=true", "--quiet",
			"--profile=sysadmin", "--", "/usr/local/bin/plexusd", "uninstall", "--conf-dir=/host/etc/cni/net.d")
		t.Logf("%s: plexusd uninstall: %s", node, strings.TrimSpace(out))
	}
	overlay := filepath.Join(testbed.ClusterDir(), "install")
	env.Kubectl(t, "delete", "-k", overlay, "--wait=true", "--ignore-not-found")

	crds := env.Client.Discovery()
	if _, err := crds.ServerResourcesForGroupVersion("k8s.cni.cncf.io/v1"); err != nil {
		t.Fatalf("after `kubectl delete -k`, the NAD API is gone: %v", err)
	}
	if _, err := env.Dynamic.Resource(testbed.NADResource()).Namespace(ns).Get(t.Context(), "survivor", metav1.GetOptions{}); err != nil {
		t.Fatalf("after `kubectl delete -k`, NAD %s/survivor: %v", ns, err)
	}
	for _, node := range []string{"node-1", "node-2"} {
		conf := filepath.Join(testbed.ClusterDir(), "nodes", node, "overlay", "etc", "upper", "cni", "net.d", "00-plexus.conflist")
		if _, err := os.Stat(conf); !os.IsNotExist(err) {
			t.Errorf("%s still has 00-plexus.conflist after plexusd uninstall (%v)", node, err)
		}
	}
	// Without plexus, a pod starts on the primary network alone (the
	// annotation is no longer anyone's business).
	env.ApplyYAML(t, ns, toolboxPod("after", map[string]string{networksAnnotation: "survivor"}))
	p := runningPod(t, env, ns, "after")
	if _, ok := p.Annotations["k8s.v1.cni.cncf.io/network-status"]; ok {
		t.Errorf("a pod created after the uninstall has a network-status: plexus still ran")
	}
	env.Kubectl(t, "-n", ns, "delete", "pod", "after", "--wait=true")
	poll.Until(t, podLimit, "the pod is gone before plexus comes back", func() (bool, string) {
		_, err := env.Client.CoreV1().Pods(ns).Get(context.Background(), "after", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// imageRef is the plexus image the cluster runs (hack/cluster.sh).
func imageRef(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(testbed.ClusterDir(), "images", "plexus.name"))
	if err != nil {
		t.Fatalf("plexus image name: %v", err)
	}
	return strings.TrimSpace(string(b))
}
