// Package informer backs the meta-plugin's reads with informer caches in
// plexusd: the pods of this node only (field selector spec.nodeName) and
// the NetworkAttachmentDefinitions. A cache miss — a pod created a moment
// ago, a NAD the watch has not delivered yet — or a cached pod whose UID is
// not the sandbox's falls back to one live GET. Writes (network-status,
// events) always go to the API server. The informers and the live requests
// use separate clients (Clients): a watch must not have the requests'
// timeout.
package informer

import (
	"context"
	"fmt"
	"time"

	nadlisters "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/listers/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/devices"
	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/kube/kubecs"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/nadclient/nadinformer"
	"github.com/plexus-cni/plexus/internal/plan"
	"github.com/plexus-cni/plexus/internal/plugin"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// Resource names used for sync reporting.
const (
	Pods           = "pods"
	NADs           = "network-attachment-definitions"
	ResourceClaims = "resourceclaims"
	ResourceSlices = "resourceslices"
)

// Clients are the cache's API clients.
type Clients struct {
	// Watch and WatchNADs serve the informers' lists and watches. Their
	// configuration must have no Timeout: client-go applies it to the
	// whole exchange, so it would cut every watch after that long.
	Watch     kubernetes.Interface
	WatchNADs nadclient.Interface
	// Live and LiveNADs serve the reads on a cache miss and the writes,
	// each bounded by its configuration's Timeout (nil: Watch, WatchNADs).
	Live     kubernetes.Interface
	LiveNADs nadclient.Interface
}

// Cache holds the node's pods and the NADs, and with WithDRA the
// ResourceClaims and the node's ResourceSlices.
type Cache struct {
	watch    kubernetes.Interface // the informers'
	live     kubernetes.Interface // the requests'
	liveNADs nadclient.Interface  // the requests' for NADs
	node     string
	resync   time.Duration
	pods     cache.SharedIndexInformer
	nads     cache.SharedIndexInformer
	nadList  nadlisters.NetworkAttachmentDefinitionLister
	claims   cache.SharedIndexInformer // nil without WithDRA
	slices   cache.SharedIndexInformer // nil without WithDRA
	// Component names the event source of the writes.
	Component string
}

// New returns the caches for node; Start runs them.
func New(c Clients, node string, resync time.Duration) *Cache {
	if c.Live == nil {
		c.Live = c.Watch
	}
	if c.LiveNADs == nil {
		c.LiveNADs = c.WatchNADs
	}
	pf := informers.NewSharedInformerFactoryWithOptions(c.Watch, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}))
	pods := pf.Core().V1().Pods().Informer()
	_ = pods.SetTransform(slimPod)
	// Not through the module's informer factory: it has no transform
	// option (nadinformer.New says what else it mends).
	nads := nadinformer.New(c.WatchNADs, metav1.NamespaceAll, resync, cache.Indexers{}, nil)
	_ = nads.SetTransform(dropManagedFields)
	return &Cache{watch: c.Watch, live: c.Live, liveNADs: c.LiveNADs, node: node, resync: resync,
		pods: pods, nads: nads, nadList: nadlisters.NewNetworkAttachmentDefinitionLister(nads.GetIndexer()),
		Component: "plexusd"}
}

// WithDRA adds informers for ResourceClaims and for the ResourceSlices of
// this node, so that the devices of pods with claims cost no API round
// trip. Call it before Start, only when the API serves resource.k8s.io/v1.
func (c *Cache) WithDRA() *Cache {
	all := informers.NewSharedInformerFactoryWithOptions(c.watch, c.resync)
	c.claims = all.Resource().V1().ResourceClaims().Informer()
	_ = c.claims.SetTransform(dropManagedFields)
	node := informers.NewSharedInformerFactoryWithOptions(c.watch, c.resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector(resourcev1.ResourceSliceSelectorNodeName, c.node).String()
		}))
	c.slices = node.Resource().V1().ResourceSlices().Informer()
	_ = c.slices.SetTransform(dropManagedFields)
	return c
}

// CanCacheDRA reports (nil) whether the API serves resource.k8s.io/v1 and
// lets plexusd list ResourceClaims and ResourceSlices, so that WithDRA's
// informers can sync; an informer that cannot would keep plexusd unready.
func CanCacheDRA(ctx context.Context, cs kubernetes.Interface) error {
	one := metav1.ListOptions{Limit: 1}
	if _, err := cs.ResourceV1().ResourceClaims(metav1.NamespaceAll).List(ctx, one); err != nil {
		return fmt.Errorf("list ResourceClaims: %w", err)
	}
	if _, err := cs.ResourceV1().ResourceSlices().List(ctx, one); err != nil {
		return fmt.Errorf("list ResourceSlices: %w", err)
	}
	return nil
}

func (c *Cache) informers() map[string]cache.SharedIndexInformer {
	m := map[string]cache.SharedIndexInformer{Pods: c.pods, NADs: c.nads}
	if c.claims != nil {
		m[ResourceClaims], m[ResourceSlices] = c.claims, c.slices
	}
	return m
}

// Start runs the informers until ctx ends.
func (c *Cache) Start(ctx context.Context) {
	for _, inf := range c.informers() {
		go inf.RunWithContext(ctx)
	}
}

// Pods is the informer of this node's pods (hot-plug watches it).
func (c *Cache) Pods() cache.SharedIndexInformer { return c.pods }

// NADs is the informer of the NADs (the DHCP supervision watches it).
func (c *Cache) NADs() cache.SharedIndexInformer { return c.nads }

// Synced reports, per resource, whether its cache has synced.
func (c *Cache) Synced() map[string]bool {
	out := map[string]bool{}
	for name, inf := range c.informers() {
		out[name] = inf.HasSynced()
	}
	return out
}

// WaitForSync waits until every cache has synced or ctx ends.
func (c *Cache) WaitForSync(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, inf := range c.informers() {
		synced = append(synced, inf.HasSynced)
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// slimPod keeps what the plugin reads (metadata, the node name, the
// resource claims and their status); the rest of a pod is most of its size.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: p.ObjectMeta,
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName, ResourceClaims: p.Spec.ResourceClaims},
		Status:     corev1.PodStatus{ResourceClaimStatuses: p.Status.ResourceClaimStatuses},
	}
	out.ManagedFields = nil
	return out, nil
}

func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// API returns the plugin's view for one request: conf's confDir resolves
// NADs with an empty spec; podUID is the sandbox's K8S_POD_UID ("" when
// not given): a cached pod with another UID is stale (a pod of that name
// was recreated) and is re-read.
func (c *Cache) API(conf *config.NetConf, podUID string) (plugin.API, error) {
	live := kubecs.NewClient(c.live, c.liveNADs, conf.ConfDir)
	live.Component = c.Component
	return &view{Client: live, c: c, confDir: conf.ConfDir, podUID: podUID}, nil
}

// view serves reads from the caches and delegates writes to the live client.
type view struct {
	*kube.Client
	c       *Cache
	confDir string
	podUID  string
}

// GetPod returns the cached pod, else one live GET.
func (v *view) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	obj, ok, err := v.c.pods.GetIndexer().GetByKey(namespace + "/" + name)
	if err == nil && ok {
		pod := obj.(*corev1.Pod)
		if v.podUID == "" || string(pod.UID) == v.podUID {
			return pod.DeepCopy(), nil
		}
	}
	return v.Client.GetPod(ctx, namespace, name)
}

// NAD returns the cached NAD, else one live GET.
func (v *view) NAD(ctx context.Context, namespace, name string) (*nad.Delegate, error) {
	// The cached object is shared with the informer: FromNAD only reads it.
	n, err := v.c.nadList.NetworkAttachmentDefinitions(namespace).Get(name)
	if err != nil {
		return v.Client.NAD(ctx, namespace, name)
	}
	return nad.FromNAD(n, v.confDir)
}

// ResourceClaim returns the cached claim, else one live GET.
func (v *view) ResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error) {
	if v.c.claims != nil {
		obj, ok, err := v.c.claims.GetIndexer().GetByKey(namespace + "/" + name)
		if c, isClaim := obj.(*resourcev1.ResourceClaim); err == nil && ok && isClaim && c.Status.Allocation != nil {
			return c.DeepCopy(), nil
		}
	}
	return v.Client.ResourceClaim(ctx, namespace, name)
}

// ResourceSlices returns this node's cached slices of driver, else lists.
func (v *view) ResourceSlices(ctx context.Context, node, driver string) ([]resourcev1.ResourceSlice, error) {
	if v.c.slices == nil || node != v.c.node {
		return v.Client.ResourceSlices(ctx, node, driver)
	}
	var out []resourcev1.ResourceSlice
	for _, obj := range v.c.slices.GetIndexer().List() {
		if s, ok := obj.(*resourcev1.ResourceSlice); ok && s.Spec.Driver == driver {
			out = append(out, *s.DeepCopy())
		}
	}
	return out, nil
}

var (
	_ plan.Resolver  = (*view)(nil)
	_ devices.Claims = (*view)(nil)
)
