package testbed

import (
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const macvlanConfig = `{"cniVersion":"1.0.0","name":"macvlan-a","type":"macvlan","master":"dummy0","ipam":{"type":"static"}}`

func TestNADRoundTrip(t *testing.T) {
	env := Require(t)
	ns := env.Namespace(t, t.Name())

	env.CreateNAD(t, ns, "macvlan-a", macvlanConfig)
	got, err := env.Dynamic.Resource(NADResource()).Namespace(ns).Get(t.Context(), "macvlan-a", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading NAD back: %v", err)
	}
	if cfg, _, _ := unstructured.NestedString(got.Object, "spec", "config"); cfg != macvlanConfig {
		t.Errorf("spec.config = %q, want %q", cfg, macvlanConfig)
	}

	env.DeleteNAD(t, ns, "macvlan-a")
	_, err = env.Dynamic.Resource(NADResource()).Namespace(ns).Get(t.Context(), "macvlan-a", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("NAD after DeleteNAD: err = %v, want NotFound", err)
	}
}

func TestNADSchemaRejectsNonStringConfig(t *testing.T) {
	env := Require(t)
	ns := env.Namespace(t, "schema")
	bad := NewNAD(ns, "bad", "")
	bad.Object["spec"] = map[string]any{"config": map[string]any{"type": "macvlan"}}
	_, err := env.Dynamic.Resource(NADResource()).Namespace(ns).Create(t.Context(), bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("creating a NAD with an object spec.config: err = %v, want Invalid", err)
	}
}

const applyDocs = `
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: net-a
spec:
  config: '{"cniVersion":"1.0.0","type":"bridge"}'
---
apiVersion: v1
kind: Pod
metadata:
  name: pod-a
  annotations:
    k8s.v1.cni.cncf.io/networks: net-a
spec:
  nodeName: node-a
  containers:
  - name: c
    image: registry.invalid/pause
`

// TestApplyYAMLAndNamespaceCleanup checks that NADs and pods can be applied
// (pods with nodeName are accepted without controllers) and that the
// namespace with its pod is gone after the test that created it.
func TestApplyYAMLAndNamespaceCleanup(t *testing.T) {
	env := Require(t)
	var ns string
	t.Run("apply", func(t *testing.T) {
		ns = env.Namespace(t, "apply")
		objs := env.ApplyYAML(t, ns, applyDocs)
		if len(objs) != 2 {
			t.Fatalf("ApplyYAML returned %d objects, want 2", len(objs))
		}
		pod, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), "pod-a", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("reading pod: %v", err)
		}
		if pod.Spec.NodeName != "node-a" || pod.Annotations["k8s.v1.cni.cncf.io/networks"] != "net-a" {
			t.Errorf("pod nodeName %q, annotations %v", pod.Spec.NodeName, pod.Annotations)
		}
		if _, err := env.Dynamic.Resource(NADResource()).Namespace(ns).Get(t.Context(), "net-a", metav1.GetOptions{}); err != nil {
			t.Errorf("reading NAD net-a: %v", err)
		}
		if objs := env.ApplyYAML(t, ns, "# nothing\n---\n"); len(objs) != 0 {
			t.Errorf("ApplyYAML of empty documents returned %d objects", len(objs))
		}
		// A pod only the namespace cleanup removes.
		orphan := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-b"},
			Spec:       *pod.Spec.DeepCopy(),
		}
		if _, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), orphan, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod-b: %v", err)
		}
	})
	if _, err := env.Client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %q after its test ended: err = %v, want NotFound", ns, err)
	}
	if pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{}); err != nil || len(pods.Items) != 0 {
		t.Errorf("pods in %q after cleanup: %d, err %v", ns, len(pods.Items), err)
	}
}

// TestStopStartAPIServer stops the shared API server, so it only runs when
// PLEXUS_TESTBED_DISRUPTIVE=1.
func TestStopStartAPIServer(t *testing.T) {
	if os.Getenv("PLEXUS_TESTBED_DISRUPTIVE") != "1" {
		t.Skip("stops the shared kube-apiserver; set PLEXUS_TESTBED_DISRUPTIVE=1")
	}
	env := Require(t)
	ns := env.Namespace(t, "restart")
	env.CreateNAD(t, ns, "survivor", macvlanConfig)

	restart := env.StopAPIServer(t)
	if _, err := env.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(t.Context()); err == nil {
		t.Error("/readyz answered while the API server is stopped")
	}
	restart()
	if _, err := env.Dynamic.Resource(NADResource()).Namespace(ns).Get(t.Context(), "survivor", metav1.GetOptions{}); err != nil {
		t.Errorf("NAD after API server restart: %v", err)
	}
	restart() // a second call (and the one in Cleanup) must be harmless
}
