package informer

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/pkg/nad"
)

func setup(t *testing.T) (*Cache, *fake.Clientset) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1",
		Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "macvlan"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "i", Args: []string{"big"}}}}}
	cs := fake.NewClientset(pod)
	gvr := schema.GroupVersionResource{Group: nad.Group, Version: nad.Version, Resource: nad.Resource}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
		"metadata": map[string]any{"namespace": "ns", "name": "macvlan"},
		"spec":     map[string]any{"config": `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}`},
	}}
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: "NetworkAttachmentDefinitionList"})
	if _, err := dyn.Resource(gvr).Namespace("ns").Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := New(Clients{Watch: cs, Dynamic: dyn}, "n1", 0)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	if !c.WaitForSync(ctx) {
		t.Fatal("caches did not sync")
	}
	cs.ClearActions()
	return c, cs
}

func gets(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "get" {
			n++
		}
	}
	return n
}

func TestReadsComeFromTheCache(t *testing.T) {
	c, cs := setup(t)
	api, _ := c.API(&config.NetConf{ConfDir: t.TempDir()}, "uid-1")
	ctx := context.Background()
	pod, err := api.GetPod(ctx, "ns", "p")
	if err != nil || pod.Annotations["k8s.v1.cni.cncf.io/networks"] != "macvlan" {
		t.Fatalf("GetPod: %v %v", pod, err)
	}
	if len(pod.Spec.Containers) != 0 {
		t.Errorf("the cache keeps container specs: %v", pod.Spec.Containers)
	}
	d, err := api.NAD(ctx, "ns", "macvlan")
	if err != nil || d.Name != "macvlan" || d.Source != "ns/macvlan" {
		t.Fatalf("NAD: %+v %v", d, err)
	}
	if n := gets(cs); n != 0 {
		t.Errorf("%d live GETs for cached objects", n)
	}
}

func TestMissAndStaleUIDGoLive(t *testing.T) {
	c, cs := setup(t)
	api, _ := c.API(&config.NetConf{}, "uid-2")
	// A pod recreated with the same name: the cached UID is stale.
	if _, err := api.GetPod(context.Background(), "ns", "p"); err != nil {
		t.Fatal(err)
	}
	if n := gets(cs); n != 1 {
		t.Errorf("stale UID: %d live GETs, want 1", n)
	}
	if _, err := api.GetPod(context.Background(), "ns", "just-created"); err == nil {
		t.Error("GetPod of a pod that does not exist succeeded")
	}
	if n := gets(cs); n != 2 {
		t.Errorf("cache miss: %d live GETs in all, want 2", n)
	}
}
