package networks

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/controller/metrics"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/nadclient/nadinformer"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
	plexusinformers "github.com/plexus-cni/plexus/pkg/client/informers/externalversions/plexus/v1alpha1"
)

// resync re-checks every definition and owned NAD now and then, in case an
// event was missed.
const resync = 10 * time.Minute

// Reconciler keeps one NAD per NetworkDefinition. It is a leader-only
// controller.Component.
type Reconciler struct {
	plexus  plexusclient.Interface
	nadCS   nadclient.Interface
	log     *slog.Logger
	metrics *metrics.Metrics
	workers int

	defs, nads cache.SharedIndexInformer
	queue      workqueue.TypedRateLimitingInterface[string]
}

var _ controller.Component = (*Reconciler)(nil)

// New returns the reconciler of NetworkDefinitions.
func New(d controller.Deps) *Reconciler {
	return &Reconciler{plexus: d.Plexus, nadCS: d.NADs, log: d.Log.With("component", "networks"), metrics: d.Metrics, workers: 2}
}

// Name implements controller.Component.
func (r *Reconciler) Name() string { return "networks" }

// LeaderOnly implements controller.Component.
func (r *Reconciler) LeaderOnly() bool { return true }

// Run watches definitions and the NADs they own until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "networks"})
	defer r.queue.ShutDown()
	r.defs = plexusinformers.NewNetworkDefinitionInformer(r.plexus, resync, cache.Indexers{})
	r.nads = nadinformer.New(r.nadCS, metav1.NamespaceAll, resync,
		cache.Indexers{"owner": ownerIndex}, func(o *metav1.ListOptions) { o.LabelSelector = v1.LabelNetworkDefinition })
	if _, err := r.defs.AddEventHandler(r.handlerFor(func(o metav1.Object) string { return o.GetName() })); err != nil {
		return fmt.Errorf("networkdefinitions handler: %w", err)
	}
	if _, err := r.nads.AddEventHandler(r.handlerFor(func(o metav1.Object) string { return o.GetLabels()[v1.LabelNetworkDefinition] })); err != nil {
		return fmt.Errorf("network-attachment-definitions handler: %w", err)
	}
	go r.defs.Run(ctx.Done())
	go r.nads.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), r.defs.HasSynced, r.nads.HasSynced) {
		return ctx.Err()
	}
	r.log.Info("caches synced")
	for range r.workers {
		go r.work(ctx)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (r *Reconciler) work(ctx context.Context) {
	for {
		name, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		start := time.Now()
		err := r.Sync(ctx, name)
		r.metrics.Reconciled("networks", time.Since(start), err)
		if err != nil {
			r.log.Warn("sync failed, retrying", "networkdefinition", name, "error", err)
			r.queue.AddRateLimited(name)
		} else {
			r.queue.Forget(name)
		}
		r.queue.Done(name)
	}
}

// handlerFor enqueues the definition key of every event's object.
func (r *Reconciler) handlerFor(key func(metav1.Object) string) cache.ResourceEventHandler {
	enqueue := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if o, err := meta.Accessor(obj); err == nil && key(o) != "" {
			r.queue.Add(key(o))
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}

// ownerIndex indexes owned NADs by their definition's name.
func ownerIndex(obj any) ([]string, error) {
	o, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	if v := o.GetLabels()[v1.LabelNetworkDefinition]; v != "" {
		return []string{v}, nil
	}
	return nil, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
