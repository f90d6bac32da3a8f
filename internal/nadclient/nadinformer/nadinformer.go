// Package nadinformer builds shared informers of NetworkAttachmentDefinitions
// on the working group's typed clientset; the module's listers read them.
package nadinformer

import (
	"context"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadtyped "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/typed/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/nadclient"
)

// New returns a shared informer of the NADs of namespace ("" for
// all) through cs, with tweak (may be nil) applied to its list and watch
// options; the module's listers read its indexer.
//
// It stands in for the module's generated informer, which (generated for
// client-go 0.29) lists and watches with context.TODO, so a stopped
// informer's request is not cancelled, and gives the reflector no way to
// learn that a client (the module's fake clientset in tests) cannot stream
// the initial list as a watch: client-go 0.37 tries that by default, and
// with such a client the informer never syncs. Here the requests take the
// reflector's context and the client is passed to
// cache.ToListWatcherWithWatchListSemantics.
func New(cs nadclient.Interface, namespace string, resync time.Duration, indexers cache.Indexers,
	tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	nads := func() nadtyped.NetworkAttachmentDefinitionInterface {
		return cs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace)
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if tweak != nil {
				tweak(&o)
			}
			return nads().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if tweak != nil {
				tweak(&o)
			}
			return nads().Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, cs),
		&nadv1.NetworkAttachmentDefinition{}, resync, indexers)
}
