// Package poolwatch follows plexus-ipam's objects for plexusd's "IPAM pool
// usage" metrics: an informer of the IPSpaces (each space's allocated
// count, spec.allocated) and one of the IPAllocations labelled with this
// node (the addresses its pods hold), both in the namespace the IPAM
// objects live in (or all namespaces). Only the fields the metrics need are
// kept: an IPSpace's index can be most of a megabyte. While the CRDs are
// not served (or not readable) the watcher looks again now and then and
// reports nothing; readiness never depends on it.
package poolwatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/logging"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

// DefaultRetry is how often the watcher looks for the CRDs while absent.
const DefaultRetry = 30 * time.Second

// Watcher keeps the informers; Pools reads them.
type Watcher struct {
	client dynamic.Interface
	// namespace holds the IPAM objects ("": all namespaces).
	namespace string
	node      string
	retry     time.Duration
	log       *logging.Logger

	mu             sync.Mutex // guards the informers
	spaces, allocs cache.SharedIndexInformer
}

// New returns a watcher of namespace ("" for all) for node; Run starts it.
// retry 0 is DefaultRetry.
func New(client dynamic.Interface, namespace, node string, retry time.Duration, log *logging.Logger) *Watcher {
	if retry <= 0 {
		retry = DefaultRetry
	}
	if log == nil {
		log = logging.Discard()
	}
	return &Watcher{client: client, namespace: namespace, node: node, retry: retry, log: log}
}

// Run waits until IPSpaces can be listed, then runs the informers until ctx
// ends.
func (w *Watcher) Run(ctx context.Context) {
	gvr := v1.SchemeGroupVersion().WithResource(v1.ResourceIPSpaces)
	reported := false
	for {
		_, err := w.client.Resource(gvr).Namespace(w.namespace).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			break
		}
		if !reported {
			reported = true
			w.log.Infof("IPAM pool metrics wait for the plexus-ipam objects (%s): %v", describe(err), err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.retry):
		}
	}
	w.start(ctx)
	w.log.Infof("IPAM pool metrics follow namespace %q", w.namespace)
}

func describe(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "CRDs not installed"
	case apierrors.IsForbidden(err):
		return "no permission to list them"
	default:
		return "API not reachable"
	}
}

func (w *Watcher) start(ctx context.Context) {
	nodeSel := v1.LabelNode + "=" + LabelValue(w.node)
	spaces := dynamicinformer.NewFilteredDynamicInformer(w.client, v1.SchemeGroupVersion().WithResource(v1.ResourceIPSpaces),
		w.namespace, 0, cache.Indexers{}, nil).Informer()
	allocs := dynamicinformer.NewFilteredDynamicInformer(w.client, v1.SchemeGroupVersion().WithResource(v1.ResourceIPAllocations),
		w.namespace, 0, cache.Indexers{}, func(o *metav1.ListOptions) { o.LabelSelector = nodeSel }).Informer()
	_ = spaces.SetTransform(slim("allocated"))
	_ = allocs.SetTransform(slim())
	w.mu.Lock()
	w.spaces, w.allocs = spaces, allocs
	w.mu.Unlock()
	go spaces.RunWithContext(ctx)
	go allocs.RunWithContext(ctx)
}

// slim keeps the metadata the metrics need, spec.space and the named spec
// fields.
func slim(fields ...string) cache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		spec := map[string]any{}
		for _, f := range append(fields, "space") {
			if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", f); found {
				spec[f] = v
			}
		}
		out := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		out.SetAPIVersion(u.GetAPIVersion())
		out.SetKind(u.GetKind())
		out.SetNamespace(u.GetNamespace())
		out.SetName(u.GetName())
		out.SetResourceVersion(u.GetResourceVersion())
		out.SetUID(u.GetUID())
		out.SetLabels(u.GetLabels())
		return out, nil
	}
}

// Synced reports whether the informers run and have synced.
func (w *Watcher) Synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.spaces != nil && w.spaces.HasSynced() && w.allocs.HasSynced()
}

// Pools returns the allocated addresses per space and the allocations of
// this node per space (both empty until the informers run).
func (w *Watcher) Pools() (allocated, node map[metrics.PoolKey]int64) {
	w.mu.Lock()
	spaces, allocs := w.spaces, w.allocs
	w.mu.Unlock()
	allocated, node = map[metrics.PoolKey]int64{}, map[metrics.PoolKey]int64{}
	if spaces == nil {
		return allocated, node
	}
	for _, obj := range spaces.GetStore().List() {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			n, _, _ := unstructured.NestedInt64(u.Object, "spec", "allocated")
			allocated[key(u)] = n
		}
	}
	want := LabelValue(w.node)
	for _, obj := range allocs.GetStore().List() {
		if u, ok := obj.(*unstructured.Unstructured); ok && u.GetLabels()[v1.LabelNode] == want {
			node[key(u)]++
		}
	}
	return allocated, node
}

func key(u *unstructured.Unstructured) metrics.PoolKey {
	space, _, _ := unstructured.NestedString(u.Object, "spec", "space")
	return metrics.PoolKey{Namespace: u.GetNamespace(), Space: space}
}

// LabelValue is the value of the node label plexus-ipam's Kubernetes store
// puts on an allocation: the node name when it is a valid label value, else
// "h-" and a hash of it. It must stay the store's rule (a test checks it
// against the store's list selector).
func LabelValue(v string) string {
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "h-" + hex.EncodeToString(sum[:12])
}
