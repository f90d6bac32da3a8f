package ipam

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/controller"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	plexusfake "github.com/plexus-cni/plexus/pkg/client/clientset/versioned/fake"
)

// noNodes answers the metadata informer of the nodes: an empty list, and
// a watch that (for a watch-list) ends the initial events at once and
// stays open.
func noNodes(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/nodes" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("watch") != "true" && r.URL.Query().Get("watch") != "1" {
		_, _ = w.Write([]byte(`{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"1"},"items":[]}`))
		return
	}
	if r.URL.Query().Get("sendInitialEvents") == "true" {
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{
			"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
			"metadata": map[string]any{"resourceVersion": "1", "annotations": map[string]any{metav1.InitialEventsAnnotationKey: "true"}}}})
	}
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func testAllocation(ns, name string, created time.Time) *v1.IPAllocation {
	return &v1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "3",
			Labels:        map[string]string{v1.LabelNode: "n1"},
			Annotations:   map[string]string{"note": "dropped"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "plexus-ipam", Operation: metav1.ManagedFieldsOperationUpdate}}},
		Spec: v1.IPAllocationSpec{Space: space, Address: "198.51.100.7", ContainerID: "c-" + name, IfName: "net1", Network: "ctl",
			PodNamespace: ns, PodName: "p-" + name, PodUID: "pod-uid", Node: "n1", Created: metav1.NewTime(created)},
	}
}

// The IPAllocation caches come from the typed clientset: one per
// Kubernetes store, holding its namespace's objects as slim typed
// objects, and each allocation it adds asks for a pass when its grace
// period ends.
func TestAllocationCaches(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(noNodes))
	defer api.Close()
	defer api.CloseClientConnections()
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	here := testAllocation("ipam", "a1", created)
	plexus := plexusfake.NewSimpleClientset(here, testAllocation("other", "a2", created.Add(-time.Hour)))
	r := New(controller.Deps{Config: &rest.Config{Host: api.URL}, Client: kubefake.NewSimpleClientset(), Plexus: plexus,
		Log: slog.New(slog.DiscardHandler)}, Options{Namespaces: []string{"ipam"}})
	stores := []namedStore{{name: "kubernetes/ipam", namespace: "ipam"}, {name: "etcd"}}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, synced, err := r.startInformers(ctx, stores)
	if err != nil {
		t.Fatal(err)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatal("caches not synced within 30s")
	}
	if stores[1].cache != nil {
		t.Error("the etcd store got an allocation cache")
	}
	objs := stores[0].cache.List()
	if len(objs) != 1 {
		t.Fatalf("cache of namespace ipam holds %d objects, want 1: %v", len(objs), objs)
	}
	got, ok := objs[0].(*v1.IPAllocation)
	if !ok {
		t.Fatalf("cached %T, want *v1alpha1.IPAllocation", objs[0])
	}
	want := &v1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Namespace: "ipam", Name: "a1", UID: "uid-a1", ResourceVersion: "3"},
		Spec: here.Spec}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("cached allocation (-want +got):\n%s", d)
	}
	// allocationAdded ran from the informer's handler (synced means its
	// ADD was delivered to the store, not yet to the handler: wait).
	deadline := time.Now().Add(10 * time.Second)
	var wake time.Time
	for wake.IsZero() && time.Now().Before(deadline) {
		if wake = r.takeWake(); wake.IsZero() {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if want := created.Add(DefaultGrace); !wake.Equal(want) {
		t.Errorf("recheck asked for %v, want the end of the grace period %v", wake, want)
	}
}

// The transform of the allocation caches keeps the spec and identity.
func TestSlimAllocation(t *testing.T) {
	a := testAllocation("ns", "a", time.Unix(1e9, 0).UTC())
	now := metav1.Now()
	a.DeletionTimestamp = &now
	o, err := slimAllocation(a)
	if err != nil {
		t.Fatal(err)
	}
	s := o.(*v1.IPAllocation)
	if s.Name != "a" || s.Namespace != "ns" || s.UID != "uid-a" || s.ResourceVersion != "3" || s.DeletionTimestamp == nil ||
		s.Spec != a.Spec {
		t.Errorf("slim allocation lost what decisions read: %+v", s)
	}
	if s.Labels != nil || s.Annotations != nil || s.ManagedFields != nil {
		t.Errorf("slim allocation kept more than decisions read: %+v", s.ObjectMeta)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: a}
	if got, _ := slimAllocation(tomb); got != any(tomb) {
		t.Errorf("tombstone changed: %+v", got)
	}
}
