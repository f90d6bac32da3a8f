// Package poolwatch follows this node's plexus-ipam allocations for
// plexusd's metric plexusd_ipam_node_allocations: an informer (of the typed
// plexus.dev clientset, pkg/client) of the IPAllocations labelled with this
// node (a server-side label selector), in the namespace the IPAM objects
// live in (or all namespaces). Only the fields the metric needs are kept.
// plexusd watches no IPSpace: every ADD and DEL rewrites one, so a watch of
// them in every plexusd would send each allocation to every node; the
// cluster-wide pool usage is plexus-controller's. While the CRD is not
// served (or not readable) the watcher looks again now and then and
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
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/logging"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
	"github.com/plexus-cni/plexus/pkg/client/informers/externalversions"
)

// DefaultRetry is how often the watcher looks for the CRD while absent.
const DefaultRetry = 30 * time.Second

// probeTimeout bounds one look for the CRD: the client may have no
// timeout of its own (a watch must not have one).
const probeTimeout = 30 * time.Second

// Watcher keeps the informer; Pools reads it.
type Watcher struct {
	// client's configuration must speak JSON (CRDs have no protobuf).
	client plexusclient.Interface
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
func New(client plexusclient.Interface, namespace, node string, retry time.Duration, log *logging.Logger) *Watcher {
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
	_, err := w.client.PlexusV1alpha1().IPAllocations(w.namespace).List(ctx, metav1.ListOptions{Limit: 1})
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
	f := externalversions.NewSharedInformerFactoryWithOptions(w.client, 0, externalversions.WithNamespace(w.namespace),
		externalversions.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = nodeSel }),
		externalversions.WithTransform(slim))
	allocs := f.Plexus().V1alpha1().IPAllocations().Informer()
	w.mu.Lock()
	w.allocs = allocs
	w.mu.Unlock()
	f.StartWithContext(ctx)
}

// slim keeps the metadata the metric needs and spec.space.
func slim(obj any) (any, error) {
	a, ok := obj.(*v1.IPAllocation)
	if !ok {
		return obj, nil
	}
	return &v1.IPAllocation{TypeMeta: a.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Namespace: a.Namespace, Name: a.Name, ResourceVersion: a.ResourceVersion, UID: a.UID, Labels: a.Labels},
		Spec:       v1.IPAllocationSpec{Space: a.Spec.Space}}, nil
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
		if a, ok := obj.(*v1.IPAllocation); ok && a.Labels[v1.LabelNode] == want {
			node[metrics.PoolKey{Namespace: a.Namespace, Space: a.Spec.Space}]++
		}
	}
	return node
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
