package scale

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

// watchSpec is one kind of watch a plexusd keeps open, as the API server
// counted them when the real plexusds started.
type watchSpec struct {
	gvr     schema.GroupVersionResource
	cluster bool // all namespaces; else the IPAM namespace
	perNode int
}

func (w watchSpec) String() string {
	g := w.gvr.Group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%d× %s/%s%s", w.perNode, g, w.gvr.Resource, w.selectorNote())
}

// detectWatches returns the watches k plexusds opened: the open-WATCH
// gauge of the API server after they started against before, divided by
// k. Nothing else may open or close watches meanwhile.
func detectWatches(before, after map[string]float64, k int) []watchSpec {
	var out []watchSpec
	for key, n := range after {
		added := n - before[key]
		per := int(math.Round(added / float64(k)))
		if per <= 0 {
			continue
		}
		f := strings.Split(key, "/") // group/version/resource/scope
		if len(f) != 4 {
			continue
		}
		out = append(out, watchSpec{gvr: schema.GroupVersionResource{Group: f[0], Version: f[1], Resource: f[2]},
			cluster: f[3] != "namespace", perNode: per})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// selectors is how a plexusd narrows each watch to its node: pods and
// ResourceSlices by spec.nodeName, IPAllocations by their node label;
// every other watch (NADs, IPSpaces, ResourceClaims) takes all objects.
func (w watchSpec) selectors(node string) (field, label string) {
	switch {
	case w.gvr.Group == "" && w.gvr.Resource == "pods":
		return fields.OneTermEqualSelector("spec.nodeName", node).String(), ""
	case w.gvr.Group == "resource.k8s.io" && w.gvr.Resource == "resourceslices":
		return fields.OneTermEqualSelector("spec.nodeName", node).String(), ""
	case w.gvr.Group == v1.Group && w.gvr.Resource == v1.ResourceIPAllocations:
		return "", v1.LabelNode + "=" + node
	}
	return "", ""
}

func (w watchSpec) selectorNote() string {
	f, l := w.selectors("NODE")
	switch {
	case f != "":
		return " (" + f + ")"
	case l != "":
		return " (" + l + ")"
	}
	return " (all)"
}

// simWatchers are the simulated nodes' watches: for each node, the same
// watches with the same selectors as a real plexusd's, run by client-go
// reflectors (list, watch, re-open after the server's 5-10 minute
// timeout, as an informer does) into a store that drops every object.
// All share one client (one HTTP/2 connection pool), so the cost they
// put on the API server — encoding and sending every event to every
// watcher — is a real cluster's, and theirs is small.
type simWatchers struct {
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	reflectors []*cache.Reflector
}

// startSimWatchers opens specs' watches for every node, starting nodes
// at perSecond, and waits (bounded) until every reflector has listed.
func startSimWatchers(ctx context.Context, base *rest.Config, nodes []string, specs []watchSpec, ipamNS string,
	perSecond float64, bound time.Duration) (*simWatchers, error) {
	cfg := rest.CopyConfig(base)
	cfg.QPS, cfg.Burst, cfg.Timeout = 2000, 4000, 0
	cfg.UserAgent = "plexus-scale/simulated-plexusd"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	sw := &simWatchers{cancel: cancel}
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	for _, node := range nodes {
		select {
		case <-ctx.Done():
			sw.stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
		for _, spec := range specs {
			ns := ipamNS
			if spec.cluster {
				ns = metav1.NamespaceAll
			}
			field, label := spec.selectors(node)
			ri := dyn.Resource(spec.gvr).Namespace(ns)
			lw := &cache.ListWatch{
				ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
					o.FieldSelector, o.LabelSelector = field, label
					return ri.List(ctx, o)
				},
				WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
					o.FieldSelector, o.LabelSelector = field, label
					return ri.Watch(ctx, o)
				},
			}
			for range spec.perNode {
				r := cache.NewReflectorWithOptions(lw, &unstructured.Unstructured{}, discard{},
					cache.ReflectorOptions{Name: "sim " + node + " " + spec.gvr.Resource})
				sw.reflectors = append(sw.reflectors, r)
				sw.wg.Add(1)
				go func() { defer sw.wg.Done(); r.RunWithContext(wctx) }()
			}
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, bound, true, func(context.Context) (bool, error) {
		for _, r := range sw.reflectors {
			if r.LastSyncResourceVersion() == "" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		sw.stop()
		return nil, fmt.Errorf("simulated watchers not synced within %s: %w", bound, err)
	}
	return sw, nil
}

func (sw *simWatchers) stop() {
	if sw == nil {
		return
	}
	sw.cancel()
	sw.wg.Wait()
}

// discard is a cache.Store that keeps nothing.
type discard struct{}

func (discard) Add(any) error                        { return nil }
func (discard) Update(any) error                     { return nil }
func (discard) Delete(any) error                     { return nil }
func (discard) List() []any                          { return nil }
func (discard) ListKeys() []string                   { return nil }
func (discard) Get(any) (any, bool, error)           { return nil, false, nil }
func (discard) GetByKey(string) (any, bool, error)   { return nil, false, nil }
func (discard) Replace([]any, string) error          { return nil }
func (discard) Resync() error                        { return nil }
func (discard) LastStoreSyncResourceVersion() string { return "" }
func (discard) Bookmark(string)                      {}
