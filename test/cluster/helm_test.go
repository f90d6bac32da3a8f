package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// chartBuildLimit bounds building hack/chart's renderer (Helm's packages;
// warm after hack/test.sh's "Helm chart tests" phase, minutes when cold).
const chartBuildLimit = 15 * time.Minute

// plexus installs from the Helm chart (charts/plexus) as from deploy/. The
// chart is rendered as `helm template --include-crds` does, by hack/chart
// with Helm's own Go packages (no helm binary), with the cluster's image,
// and applied with kubectl after the kustomize install's objects are
// deleted (its CRDs, with plexus-ipam's objects, and the NAD CRD stay: the
// chart's CRDs are deploy/'s, and Helm never replaces existing CRDs). Then
// plexusd is ready on both nodes, the controller available and filling in
// the webhooks' caBundle, and a pod gets a macvlan net1. At the end the
// chart's objects are deleted and plexus is installed again as the other
// tests expect it (hack/cluster.sh install).
func TestHelmChartInstalls(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "helm")
	env.CreateNAD(t, ns, "macvlan-conf", macvlanNAD(t))

	ref := imageRef(t)
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		t.Fatalf("image reference %q has no tag", ref)
	}
	render := chartRenderer(t)
	values := []string{"-set", "image.repository=" + ref[:i], "-set", "image.tag=" + ref[i+1:]}
	dir := t.TempDir()
	withCRDs := filepath.Join(dir, "plexus.yaml")
	objects := filepath.Join(dir, "objects.yaml")
	render(withCRDs, values...)
	render(objects, append(values, "-crds=false")...)

	t.Cleanup(func() {
		// Not t.Context(): it is done when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), installLimit)
		defer cancel()
		if out, err := env.TryKubectl(ctx, "delete", "-f", objects, "--wait=true", "--ignore-not-found"); err != nil {
			t.Errorf("deleting the chart's objects: %v\n%s", err, out)
		}
		if err := install(); err != nil {
			t.Errorf("installing plexus again: %v", err)
		}
	})
	// The same names as deploy/'s objects (hack/chart's tests): this
	// deletes the kustomize install but for its CRDs.
	env.Kubectl(t, "delete", "-f", objects, "--wait=true", "--ignore-not-found")
	env.Kubectl(t, "apply", "--server-side", "--field-manager=helm-chart-test", "-f", withCRDs)

	// Under TryKubectl's own bound of 3 minutes.
	limit := fmt.Sprintf("--timeout=%ds", int((installLimit - 30*time.Second).Seconds()))
	env.Kubectl(t, "-n", "kube-system", "rollout", "status", "daemonset/plexusd", limit)
	env.Kubectl(t, "-n", "kube-system", "rollout", "status", "deployment/plexus-controller", limit)

	ds, err := env.Client.AppsV1().DaemonSets("kube-system").Get(t.Context(), "plexusd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Labels["app.kubernetes.io/managed-by"] != "Helm" || ds.Spec.Template.Spec.Containers[0].Image != ref {
		t.Fatalf("plexusd is not the chart's: labels %v, image %s", ds.Labels, ds.Spec.Template.Spec.Containers[0].Image)
	}
	if ds.Status.NumberReady != 2 {
		t.Errorf("plexusd ready on %d nodes, want 2", ds.Status.NumberReady)
	}
	poll.Until(t, installLimit, "plexus-controller fills in the chart's webhook configurations' caBundle", func() (bool, string) {
		adm := env.Client.AdmissionregistrationV1()
		v, err := adm.ValidatingWebhookConfigurations().Get(t.Context(), "plexus-webhook", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		m, err := adm.MutatingWebhookConfigurations().Get(t.Context(), "plexus-mutating-webhook", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, w := range v.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, "validating " + w.Name + " has no caBundle"
			}
		}
		for _, w := range m.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, "mutating " + w.Name + " has no caBundle"
			}
		}
		return true, ""
	})

	env.ApplyYAML(t, ns, toolboxPod("charted", map[string]string{networksAnnotation: "macvlan-conf"}))
	p := runningPod(t, env, ns, "charted")
	st := statusOf(t, &p)
	if len(st) != 2 || st[1].Interface != "net1" || st[1].Name != ns+"/macvlan-conf" || len(st[1].IPs) == 0 {
		t.Fatalf("network-status = %+v, want eth0 and net1 on %s/macvlan-conf with an address", st, ns)
	}
	if out, err := env.Exec(t.Context(), ns, p.Name, "ip", "addr", "show", "net1"); err != nil || !strings.Contains(out, st[1].IPs[0]) {
		t.Errorf("pod %s: net1 lacks %s: %v\n%s", p.Name, st[1].IPs[0], err, out)
	}
}

// chartRenderer builds hack/chart (a module of its own: Helm's packages stay
// out of plexus's) and returns a function writing the chart rendered with
// the given flags to a file. $GO names the go command, as in the Makefile.
func chartRenderer(t *testing.T) func(out string, args ...string) {
	t.Helper()
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	bin := filepath.Join(t.TempDir(), "chart")
	ctx, cancel := context.WithTimeout(t.Context(), chartBuildLimit)
	defer cancel()
	build := exec.CommandContext(ctx, goCmd, "-C", filepath.Join(testbed.Root(), "hack", "chart"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building hack/chart: %v\n%s", err, out)
	}
	chart := filepath.Join(testbed.Root(), "charts", "plexus")
	return func(out string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append([]string{"-chart", chart, "-namespace", "kube-system"}, args...)...)
		rendered, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("rendering the chart %v: %v\n%s", args, err, stderr)
		}
		if err := os.WriteFile(out, rendered, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
