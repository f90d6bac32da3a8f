package informer

import (
	"context"
	"errors"
	"testing"

	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/pkg/nad"
)

func setup(t *testing.T) (*Cache, *fake.Clientset, *nadfake.Clientset) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1",
		Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "macvlan"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "i", Args: []string{"big"}}}}}
	cs := fake.NewClientset(pod)
	// Created through the client: objects given to NewSimpleClientset are
	// filed under the resource its tracker guesses from the kind
	// ("networkattachmentdefinitions"), where the fake client never looks.
	nads := nadfake.NewSimpleClientset()
	_, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("ns").Create(context.Background(), &nad.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "macvlan",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}},
		Spec: nad.Spec{Config: `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}`},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := New(Clients{Watch: cs, WatchNADs: noWatchList{nads}}, "n1", 0)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	if !c.WaitForSync(ctx) {
		t.Fatal("caches did not sync")
	}
	cs.ClearActions()
	nads.ClearActions()
	return c, cs, nads
}

// noWatchList tells the reflector that the module's fake clientset cannot
// stream the initial list as a watch (client-go's own fakes say so).
type noWatchList struct{ *nadfake.Clientset }

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

func gets(cs interface{ Actions() []k8stesting.Action }) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "get" {
			n++
		}
	}
	return n
}

func TestReadsComeFromTheCache(t *testing.T) {
	c, cs, nads := setup(t)
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
	if n := gets(cs) + gets(nads); n != 0 {
		t.Errorf("%d live GETs for cached objects", n)
	}
	cached, err := c.nadList.NetworkAttachmentDefinitions("ns").Get("macvlan")
	if err != nil || cached.ManagedFields != nil {
		t.Errorf("cached NAD: %v, managed fields %v (the transform drops them)", err, cached.ManagedFields)
	}
}

func TestMissAndStaleUIDGoLive(t *testing.T) {
	c, cs, nads := setup(t)
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
	// A NAD the watch has not delivered: one live GET through the NAD
	// clientset, whose NotFound is plexus's ErrNotFound.
	if _, err := api.NAD(context.Background(), "ns", "not-yet"); !errors.Is(err, nad.ErrNotFound) {
		t.Errorf("NAD of a missing NAD: %v, want ErrNotFound", err)
	}
	if n := gets(nads); n != 1 {
		t.Errorf("NAD cache miss: %d live GETs, want 1", n)
	}
}
