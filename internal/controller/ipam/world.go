package ipam

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/controller/metrics"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

// cacheWorld answers from the informers' stores.
type cacheWorld struct {
	pods, nodes, sets cache.Store
}

func (w cacheWorld) Pod(ns, name string) (*corev1.Pod, error) {
	o, ok, err := w.pods.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil, err
	}
	p, _ := o.(*corev1.Pod)
	return p, nil
}

func (w cacheWorld) NodeExists(name string) (bool, error) {
	_, ok, err := w.nodes.GetByKey(name)
	return ok, err
}

func (w cacheWorld) StatefulSet(ns, name string) (*appsv1.StatefulSet, error) {
	o, ok, err := w.sets.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil, err
	}
	s, _ := o.(*appsv1.StatefulSet)
	return s, nil
}

// ClaimExists answers "no" from the caches, which do not hold IPAMClaims:
// a claim's reservation is then always confirmed with the API server.
func (w cacheWorld) ClaimExists(ns, name string) (bool, error) { return false, nil }

// liveWorld reads from the API server: a decision to free made from the
// caches is confirmed with it, so that a cache that has not seen a new pod
// or node yet never frees an address. Within one pass a node is read once
// (a lost node's pods all ask about it).
type liveWorld struct {
	ctx   context.Context
	c     kubernetes.Interface
	mu    sync.Mutex
	nodes map[string]*nodeRead
}

func newLiveWorld(ctx context.Context, c kubernetes.Interface) *liveWorld {
	return &liveWorld{ctx: ctx, c: c, nodes: map[string]*nodeRead{}}
}

func (w *liveWorld) Pod(ns, name string) (*corev1.Pod, error) {
	p, err := w.c.CoreV1().Pods(ns).Get(w.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", ns, name, err)
	}
	return p, nil
}

func (w *liveWorld) NodeExists(name string) (bool, error) {
	w.mu.Lock()
	r, known := w.nodes[name]
	if !known {
		r = &nodeRead{}
		w.nodes[name] = r
	}
	w.mu.Unlock()
	r.once.Do(func() {
		_, err := w.c.CoreV1().Nodes().Get(w.ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			r.err = fmt.Errorf("reading node %s: %w", name, err)
		default:
			r.exists = true
		}
	})
	return r.exists, r.err
}

// nodeRead is one node's read, shared by the pass's workers.
type nodeRead struct {
	once   sync.Once
	exists bool
	err    error
}

func (w *liveWorld) StatefulSet(ns, name string) (*appsv1.StatefulSet, error) {
	s, err := w.c.AppsV1().StatefulSets(ns).Get(w.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading statefulset %s/%s: %w", ns, name, err)
	}
	return s, nil
}

// poolCounts is the source of the pool gauge: a Kubernetes store's counts
// come from its cache at scrape time, the etcd store's from its last pass.
type poolCounts struct {
	stores []namedStore
	mu     sync.Mutex
	last   map[string]map[string]uint64 // store name → space → held
}

func newPoolCounts(stores []namedStore) *poolCounts {
	return &poolCounts{stores: stores, last: map[string]map[string]uint64{}}
}

// set records a pass's counts of a store without a cache.
func (p *poolCounts) set(s namedStore, held map[string]uint64) {
	if s.cache != nil {
		return
	}
	c := make(map[string]uint64, len(held))
	for k, v := range held {
		if v > 0 {
			c[k] = v
		}
	}
	p.mu.Lock()
	p.last[s.name] = c
	p.mu.Unlock()
}

func (p *poolCounts) read() map[metrics.PoolKey]int64 {
	out := map[metrics.PoolKey]int64{}
	for _, s := range p.stores {
		if s.cache == nil {
			continue
		}
		for _, o := range s.cache.List() {
			if a, ok := o.(*v1.IPAllocation); ok {
				out[metrics.PoolKey{Store: "kubernetes", Namespace: s.namespace, Space: a.Spec.Space}]++
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, held := range p.last {
		for sp, n := range held {
			out[metrics.PoolKey{Store: "etcd", Space: sp}] += int64(n)
		}
	}
	return out
}

// ClaimExists reports a claim that is being deleted (its owner deleted
// in the foreground, a finalizer pending) as gone: nothing will use it
// again.
func (w *liveWorld) ClaimExists(ns, name string) (bool, error) {
	raw, err := w.c.CoreV1().RESTClient().Get().
		AbsPath("/apis/k8s.cni.cncf.io/v1alpha1/namespaces", ns, "ipamclaims", name).Do(w.ctx).Raw()
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading IPAMClaim %s/%s: %w", ns, name, err)
	}
	var claim metav1.PartialObjectMetadata
	if err := json.Unmarshal(raw, &claim); err != nil {
		return false, fmt.Errorf("reading IPAMClaim %s/%s: %w", ns, name, err)
	}
	return claim.DeletionTimestamp == nil, nil
}
