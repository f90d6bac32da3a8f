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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	plexusfake "github.com/plexus-cni/plexus/pkg/client/clientset/versioned/fake"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

func space(ns, name, key string, allocated int64) *v1.IPSpace {
	return &v1.IPSpace{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.IPSpaceSpec{Space: key, Allocated: allocated, Index: []byte{0, 0, 0}}}
}

func allocation(ns, name, key, node string) *v1.IPAllocation {
	return &v1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1.LabelNode: LabelValue(node)},
			Annotations: map[string]string{"note": "dropped"}},
		Spec: v1.IPAllocationSpec{Space: key, Address: "198.51.100.1", Node: node, ContainerID: "c-" + name, IfName: "net1"},
	}
}

func fakeClient(objs ...runtime.Object) *plexusfake.Clientset {
	return plexusfake.NewSimpleClientset(objs...)
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
	if _, err := c.PlexusV1alpha1().IPAllocations("ipam").Create(ctx, allocation("ipam", "a6", "net:b", "node-1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new allocation counts", func() bool {
		return w.Pools()[metrics.PoolKey{Namespace: "ipam", Space: "net:b"}] == 2
	})
	// plexusd watches no IPSpace: each ADD rewrites one, and a watch of
	// them in every plexusd would send each ADD to every node.
	// The informer asks the server for this node's allocations only.
	wantSel := v1.LabelNode + "=" + LabelValue("node-1")
	informed := 0
	for _, a := range c.Actions() {
		if a.GetResource().Resource == v1.ResourceIPSpaces {
			t.Errorf("the watcher touched the IPSpaces: %s", a.GetVerb())
		}
		var sel string
		switch a := a.(type) {
		case k8stesting.ListAction:
			if a.GetListRestrictions().Labels.Empty() {
				continue // the probe
			}
			sel = a.GetListRestrictions().Labels.String()
		case k8stesting.WatchAction:
			sel = a.GetWatchRestrictions().Labels.String()
		default:
			continue
		}
		informed++
		if sel != wantSel || a.GetNamespace() != "ipam" {
			t.Errorf("%s of %s in %q with selector %q, want %q in ipam", a.GetVerb(), a.GetResource().Resource, a.GetNamespace(), sel, wantSel)
		}
	}
	if informed < 2 {
		t.Errorf("%d selected lists and watches, want the informer's list and watch", informed)
	}
}

// The transform keeps the space and the node label, nothing else of spec.
func TestSlimKeepsSpaceAndLabels(t *testing.T) {
	out, err := slim(allocation("ipam", "a1", "net:a", "node-1"))
	if err != nil {
		t.Fatal(err)
	}
	a := out.(*v1.IPAllocation)
	if a.Spec != (v1.IPAllocationSpec{Space: "net:a"}) || a.Labels[v1.LabelNode] != "node-1" || a.Name != "a1" || a.Namespace != "ipam" {
		t.Errorf("slim: spec %+v labels %v", a.Spec, a.Labels)
	}
	if a.Annotations != nil {
		t.Errorf("slim kept the annotations %v", a.Annotations)
	}
}

// absent returns a client that answers every list with NotFound, as the
// API server does for a resource whose CRD is not installed.
func absent() *plexusfake.Clientset {
	c := fakeClient()
	c.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(a.GetResource().GroupResource(), "")
	})
	return c
}

func TestCRDsAbsent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := absent()
	w := New(c, "ipam", "node-1", time.Millisecond, nil)
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	// The watcher looks again and again, and starts no informer.
	waitUntil(t, "three looks for the CRD", func() bool { return len(c.Actions()) >= 3 })
	if node := w.Pools(); len(node) != 0 || w.Synced() {
		t.Errorf("without CRDs: %v synced %v", node, w.Synced())
	}
	cancel()
	<-done
	for _, a := range c.Actions() {
		if a.GetVerb() != "list" || a.GetResource().Resource != v1.ResourceIPAllocations || a.GetNamespace() != "ipam" {
			t.Errorf("without CRDs the watcher did %s %s in %q; want only lists of %s in ipam",
				a.GetVerb(), a.GetResource().Resource, a.GetNamespace(), v1.ResourceIPAllocations)
		}
	}
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
