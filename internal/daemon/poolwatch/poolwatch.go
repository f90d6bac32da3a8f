// Package poolwatch follows this node's plexus-ipam allocations for
// plexusd's metric plexusd_ipam_node_allocations: an informer of the
// IPAllocations labelled with this node (a server-side label selector),
// in the namespace the IPAM objects live in (or all namespaces). Only the
// fields the metric needs are kept. plexusd watches no IPSpace: every ADD
// and DEL rewrites one, so a watch of them in every plexusd would send
// each allocation to every node; the cluster-wide pool usage is
// plexus-controller's. While the CRD is not served (or not readable) the
// watcher looks again now and then and reports nothing; readiness never
// depends on it.
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

// DefaultRetry is how often the watcher looks for the CRD while absent.
const DefaultRetry = 30 * time.Second

// probeTimeout bounds one look for the CRD: the client may have no
// timeout of its own (a watch must not have one).
const probeTimeout = 30 * time.Second

// Watcher keeps the informer; Pools reads it.
type Watcher struct {
	client dynamic.Interface
	// namespace holds the IPAM objects ("": all namespaces).
	namespace string
	node      string
	retry     time.Duration
	log       *logging.Logger

	mu     sync.Mutex // guards allocs
	allocs cache.SharedIndexInformer
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

// Run waits until IPAllocations can be listed, then runs the informer
// until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	reported := false
	for {
		err := w.probe(ctx)
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

// probe lists one IPAllocation (of any node: the answer says whether the
// CRD is served and readable, not what this node holds).
func (w *Watcher) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	gvr := v1.SchemeGroupVersion.WithResource(v1.ResourceIPAllocations)
	_, err := w.client.Resource(gvr).Namespace(w.namespace).List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

func describe(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "CRD not installed"
	case apierrors.IsForbidden(err):
		return "no permission to list them"
	default:
		return "API not reachable"
	}
}

func (w *Watcher) start(ctx context.Context) {
	nodeSel := v1.LabelNode + "=" + LabelValue(w.node)
	allocs := dynamicinformer.NewFilteredDynamicInformer(w.client, v1.SchemeGroupVersion.WithResource(v1.ResourceIPAllocations),
		w.namespace, 0, cache.Indexers{}, func(o *metav1.ListOptions) { o.LabelSelector = nodeSel }).Informer()
	_ = allocs.SetTransform(slim)
	w.mu.Lock()
	w.allocs = allocs
	w.mu.Unlock()
	go allocs.RunWithContext(ctx)
}

// slim keeps the metadata the metric needs and spec.space.
func slim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	spec := map[string]any{}
	if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "space"); found {
		spec["space"] = v
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

// Synced reports whether the informer runs and has synced.
func (w *Watcher) Synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.allocs != nil && w.allocs.HasSynced()
}

// Pools returns the allocations of this node per space (empty until the
// informer runs).
func (w *Watcher) Pools() map[metrics.PoolKey]int64 {
	w.mu.Lock()
	allocs := w.allocs
	w.mu.Unlock()
	node := map[metrics.PoolKey]int64{}
	if allocs == nil {
		return node
	}
	want := LabelValue(w.node)
	for _, obj := range allocs.GetStore().List() {
		if u, ok := obj.(*unstructured.Unstructured); ok && u.GetLabels()[v1.LabelNode] == want {
			node[key(u)]++
		}
	}
	return node
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
