package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// testNIC is the device-plugin resource of the test's NAD.
const testNIC corev1.ResourceName = "plexus.dev/testnic"

// TestAPIServerMutating runs the webhook component behind the real API
// server with deploy/webhook's MutatingWebhookConfiguration (its caBundle
// set by the component): a pod selecting a resourceName NAD twice is
// stored with two of that resource on its first container; a pod that
// asks for the resource itself, and a pod without networks, are stored as
// written.
func TestAPIServerMutating(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "mutate")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	name := "plexus-mutating-webhook-" + ns
	registerMutatingManifest(t, env, name, "https://"+l.Addr().String(), ns)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	comp := NewComponent(controller.Deps{Client: env.Client, Dynamic: env.Dynamic, NADs: nadClient(t, env.RESTConfig), Log: slog.New(slog.NewTextHandler(t.Output(), nil))},
		Options{Listener: l, SecretNamespace: ns, SecretName: "webhook-tls", Hosts: []string{"127.0.0.1"}, MutatingConfiguration: name})
	go func() { done <- comp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	nads := env.Dynamic.Resource(testbed.NADResource()).Namespace(ns)
	const config = `{"cniVersion":"0.3.1","type":"host-device"}`
	nic := testNAD(ns, "nic", config)
	nic["metadata"].(map[string]any)["annotations"] = map[string]any{nad.ResourceNameAnnotation: string(testNIC)}
	for _, obj := range []map[string]any{nic, testNAD(ns, "plain", config)} {
		if _, err := nads.Create(t.Context(), unstructuredOf(obj), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pods := env.Client.CoreV1().Pods(ns)
	awaitInjection(t, pods.Create, ns)

	t.Run("two attachments of the resource", func(t *testing.T) {
		p := testPod(ns, "two", "nic,plain,nic")
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "second", Image: "registry.invalid/none"})
		got := create(t, pods.Create, p)
		two := resource.MustParse("2")
		first := got.Spec.Containers[0].Resources
		for what, list := range map[string]corev1.ResourceList{"requests": first.Requests, "limits": first.Limits} {
			if q, ok := list[testNIC]; !ok || !q.Equal(two) {
				t.Errorf("first container's %s = %v, want %s: 2", what, list, testNIC)
			}
		}
		if second := got.Spec.Containers[1].Resources; len(second.Requests)+len(second.Limits) > 0 {
			t.Errorf("second container's resources = %+v, want none", second)
		}
	})
	t.Run("pod requesting the resource itself", func(t *testing.T) {
		p := testPod(ns, "own", "nic,nic")
		one := corev1.ResourceList{testNIC: resource.MustParse("1")}
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "second", Image: "registry.invalid/none",
			Resources: corev1.ResourceRequirements{Requests: one, Limits: one}})
		got := create(t, pods.Create, p)
		if r := got.Spec.Containers[0].Resources; len(r.Requests)+len(r.Limits) > 0 {
			t.Errorf("first container's resources = %+v, want none", r)
		}
		if r := got.Spec.Containers[1].Resources; !r.Requests[testNIC].Equal(one[testNIC]) || !r.Limits[testNIC].Equal(one[testNIC]) {
			t.Errorf("second container's resources = %+v, want %s: 1 as written", r, testNIC)
		}
	})
	t.Run("pod without networks", func(t *testing.T) {
		p := testPod(ns, "none", "")
		delete(p.Annotations, "k8s.v1.cni.cncf.io/networks")
		if r := create(t, pods.Create, p).Spec.Containers[0].Resources; len(r.Requests)+len(r.Limits) > 0 {
			t.Errorf("resources = %+v, want none", r)
		}
	})
}

type createPod func(context.Context, *corev1.Pod, metav1.CreateOptions) (*corev1.Pod, error)

// create creates p and returns the pod as stored.
func create(t *testing.T, c createPod, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := c(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod %s: %v", p.Name, err)
	}
	return got
}

// awaitInjection waits until the API server calls the webhook (the
// configuration and its caBundle reach its webhook cache
// asynchronously): until a probe pod selecting nic is stored with the
// resource. Probes are left to the namespace's cleanup.
func awaitInjection(t *testing.T, c createPod, ns string) {
	t.Helper()
	var n int
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n++
		got, err := c(ctx, testPod(ns, fmt.Sprintf("probe-%d", n), "nic"), metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		last = fmt.Sprintf("%+v", got.Spec.Containers[0].Resources)
		_, ok := got.Spec.Containers[0].Resources.Limits[testNIC]
		return ok, nil
	})
	if err != nil {
		t.Fatalf("webhook never injected %s: %v; last resources %s", testNIC, err, last)
	}
}
