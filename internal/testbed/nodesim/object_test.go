package nodesim

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// newFakeClient returns a clientset that, like an API server, assigns a UID
// to every created Pod.
func newFakeClient() *fake.Clientset {
	client := fake.NewClientset()
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		pod := action.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		pod.UID = "uid-from-api"
		return false, nil, nil
	})
	return client
}

func TestRunPodManagesPodObject(t *testing.T) {
	requireRoot(t)
	client := newFakeClient()
	records := t.TempDir()
	node := newScriptedNode(t, false, records)
	node.Client = client
	pod, err := node.RunPod(t.Context(), t, PodSpec{
		Namespace:   "team",
		Name:        "web",
		Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "macnet"},
		Labels:      map[string]string{"app": "web"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if pod.UID != "uid-from-api" {
		t.Errorf("pod UID %q, want the one the API assigned", pod.UID)
	}
	if args := readRecord(t, records, "ADD.args"); !strings.Contains(args, ";K8S_POD_UID=uid-from-api") {
		t.Errorf("CNI_ARGS %q lack the API-assigned pod UID", args)
	}
	obj, err := pod.Object(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"nodeName": obj.Spec.NodeName, "annotations": obj.Annotations, "labels": obj.Labels,
		"containers": len(obj.Spec.Containers), "container": obj.Spec.Containers[0].Name,
	}
	want := map[string]any{
		"nodeName": node.Name, "annotations": map[string]string{"k8s.v1.cni.cncf.io/networks": "macnet"},
		"labels": map[string]string{"app": "web"}, "containers": 1, "container": "app",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Pod object (-want +got):\n%s", diff)
	}
	if err := pod.Remove(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("team").Get(t.Context(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Pod object after Remove: err = %v, want NotFound", err)
	}
}
