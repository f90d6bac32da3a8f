package poolwatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

func space(ns, name, key string, allocated int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1.Group + "/" + v1.Version, "kind": "IPSpace",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     map[string]any{"space": key, "allocated": allocated, "index": "AAAA"},
	}}
	return u
}

func allocation(ns, name, key, node string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1.Group + "/" + v1.Version, "kind": "IPAllocation",
		"metadata": map[string]any{"namespace": ns, "name": name, "labels": map[string]any{v1.LabelNode: LabelValue(node)}},
		"spec":     map[string]any{"space": key, "address": "198.51.100.1", "node": node},
	}}
}

func fakeClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	gv := v1.SchemeGroupVersion
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gv.WithResource(v1.ResourceIPSpaces):      "IPSpaceList",
		gv.WithResource(v1.ResourceIPAllocations): "IPAllocationList",
	}, objs...)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, poll.True(cond))
}

func TestPoolsCountThisNode(t *testing.T) {
	c := fakeClient(
		space("ipam", "s1", "net:a", 7), space("ipam", "s2", "net:b", 0), space("other", "s3", "net:a", 40),
		allocation("ipam", "a1", "net:a", "node-1"), allocation("ipam", "a2", "net:a", "node-1"),
		allocation("ipam", "a3", "net:b", "node-1"), allocation("ipam", "a4", "net:a", "node-2"),
		allocation("other", "a5", "net:a", "node-1"),
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := New(c, "ipam", "node-1", time.Millisecond, nil)
	go w.Run(ctx)
	waitUntil(t, "the informer synced", w.Synced)
	node := w.Pools()
	wantNode := map[metrics.PoolKey]int64{{Namespace: "ipam", Space: "net:a"}: 2, {Namespace: "ipam", Space: "net:b"}: 1}
	if fmt.Sprint(node) != fmt.Sprint(wantNode) {
		t.Errorf("node allocations %v, want %v", node, wantNode)
	}
	// The informer keeps up: a new allocation of this node counts.
	gvr := v1.SchemeGroupVersion.WithResource(v1.ResourceIPAllocations)
	if _, err := c.Resource(gvr).Namespace("ipam").Create(ctx, allocation("ipam", "a6", "net:b", "node-1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new allocation counts", func() bool {
		return w.Pools()[metrics.PoolKey{Namespace: "ipam", Space: "net:b"}] == 2
	})
	// plexusd watches no IPSpace: each ADD rewrites one, and a watch of
	// them in every plexusd would send each ADD to every node.
	for _, a := range c.Actions() {
		if a.GetResource().Resource == v1.ResourceIPSpaces {
			t.Errorf("the watcher touched the IPSpaces: %s", a.GetVerb())
		}
	}
}

// The transform keeps the space and the node label, nothing else of spec.
func TestSlimKeepsSpaceAndLabels(t *testing.T) {
	out, err := slim(allocation("ipam", "a1", "net:a", "node-1"))
	if err != nil {
		t.Fatal(err)
	}
	u := out.(*unstructured.Unstructured)
	spec := u.Object["spec"].(map[string]any)
	if len(spec) != 1 || spec["space"] != "net:a" || u.GetLabels()[v1.LabelNode] != "node-1" {
		t.Errorf("slim: spec %v labels %v", spec, u.GetLabels())
	}
}

// absent answers every list with NotFound, as the API server does for a
// resource whose CRD is not installed.
type absent struct{ dynamic.Interface }

func (absent) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return absentResource{gvr: gvr}
}

type absentResource struct {
	dynamic.NamespaceableResourceInterface
	gvr schema.GroupVersionResource
}

func (a absentResource) Namespace(string) dynamic.ResourceInterface { return a }

func (a absentResource) List(context.Context, metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	return nil, apierrors.NewNotFound(a.gvr.GroupResource(), "")
}

func TestCRDsAbsent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := New(absent{}, "ipam", "node-1", time.Millisecond, nil)
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	if node := w.Pools(); len(node) != 0 || w.Synced() {
		t.Errorf("without CRDs: %v synced %v", node, w.Synced())
	}
	cancel()
	<-done
}

// LabelValue is the Kubernetes store's node label rule: the store's List
// by node sends the same selector.
func TestLabelValueMatchesTheStore(t *testing.T) {
	selectors := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		selectors <- r.URL.Query().Get("labelSelector")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"apiVersion":"plexus.dev/v1alpha1","kind":"IPAllocationList","metadata":{},"items":[]}`)
	}))
	defer srv.Close()
	st, err := kubestore.New(&rest.Config{Host: srv.URL}, kubestore.Options{Namespace: "ipam"})
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"node-1", strings.Repeat("n", 70) + ".example.org", "Node_With.Odd-chars"} {
		if _, err := st.List(context.Background(), store.Filter{Node: node}); err != nil {
			t.Fatal(err)
		}
		got := <-selectors
		if want := v1.LabelNode + "=" + LabelValue(node); got != want {
			t.Errorf("node %q: the store selects %q, LabelValue gives %q", node, got, want)
		}
	}
}
