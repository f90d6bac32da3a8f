package ipam

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/client/informers/externalversions"
)

// The caches keep only what decisions read: on a large cluster the pods
// alone would otherwise cost hundreds of megabytes. Pods keep their
// identity, node and phase; nodes are watched as metadata (a node's status
// is most of its size and changes all the time); StatefulSets keep their
// replicas and ordinals; IPAllocations (read through the typed plexus.dev
// clientset) keep their spec and identity, without managed fields.

// startInformers starts the caches and returns the world they answer and
// their sync functions; allocation caches are set on the kubernetes
// stores.
func (r *Reclaimer) startInformers(ctx context.Context, stores []namedStore) (cacheWorld, []cache.InformerSynced, error) {
	f := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithTransform(slimObject))
	pods, sets := f.Core().V1().Pods().Informer(), f.Apps().V1().StatefulSets().Informer()
	mc, err := metadata.NewForConfig(r.cfg)
	if err != nil {
		return cacheWorld{}, nil, fmt.Errorf("metadata client: %w", err)
	}
	mf := metadatainformer.NewSharedInformerFactory(mc, 0)
	nodes := mf.ForResource(corev1.SchemeGroupVersion.WithResource("nodes")).Informer()
	if err := nodes.SetTransform(slimObject); err != nil {
		return cacheWorld{}, nil, err
	}
	// A deleted IPAMClaim frees its reservation at once (decideClaim asks
	// the API server whether the claim exists). Not waited for: the CRD
	// may be missing (--ensure-nad-crd=false), and claims are confirmed
	// live anyway.
	claims := mf.ForResource(schema.GroupVersionResource{Group: "k8s.cni.cncf.io", Version: "v1alpha1", Resource: "ipamclaims"}).Informer()
	if _, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: r.poke}); err != nil {
		return cacheWorld{}, nil, fmt.Errorf("ipam informer handler: %w", err)
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{pods, cache.ResourceEventHandlerFuncs{DeleteFunc: r.poke, UpdateFunc: func(_, o any) {
			if p, ok := o.(*corev1.Pod); ok && terminal(p) {
				r.poke(o)
			}
		}}},
		{nodes, cache.ResourceEventHandlerFuncs{DeleteFunc: r.poke}},
		{sets, cache.ResourceEventHandlerFuncs{DeleteFunc: r.poke, UpdateFunc: func(_, o any) { r.poke(o) }}},
	}
	synced := []cache.InformerSynced{pods.HasSynced, nodes.HasSynced, sets.HasSynced}
	for i := range stores {
		if stores[i].namespace == "" {
			continue
		}
		pf := externalversions.NewSharedInformerFactoryWithOptions(r.plexus, 0, externalversions.WithNamespace(stores[i].namespace),
			externalversions.WithTransform(slimAllocation))
		inf := pf.Plexus().V1alpha1().IPAllocations().Informer()
		handlers = append(handlers, struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{inf, cache.ResourceEventHandlerFuncs{AddFunc: r.allocationAdded, UpdateFunc: func(_, o any) { r.allocationAdded(o) }}})
		synced = append(synced, inf.HasSynced)
		stores[i].cache = inf.GetStore()
		pf.Start(ctx.Done())
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return cacheWorld{}, nil, fmt.Errorf("ipam informer handler: %w", err)
		}
	}
	f.Start(ctx.Done())
	mf.Start(ctx.Done())
	return cacheWorld{pods: pods.GetStore(), nodes: nodes.GetStore(), sets: sets.GetStore()}, synced, nil
}

// slimMeta keeps an object's identity.
func slimMeta(m metav1.Object) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
		ResourceVersion: m.GetResourceVersion(), DeletionTimestamp: m.GetDeletionTimestamp()}
}

// slimObject is the transform of the pod, node and StatefulSet caches.
func slimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &corev1.Pod{ObjectMeta: slimMeta(o), Spec: corev1.PodSpec{NodeName: o.Spec.NodeName},
			Status: corev1.PodStatus{Phase: o.Status.Phase}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: slimMeta(o),
			Spec: appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas, Ordinals: o.Spec.Ordinals}}, nil
	case *metav1.PartialObjectMetadata:
		return &metav1.PartialObjectMetadata{TypeMeta: o.TypeMeta, ObjectMeta: slimMeta(o)}, nil
	}
	return obj, nil // a tombstone or an object already slimmed
}

// slimAllocation is the transform of the IPAllocation caches: the object
// without managed fields, annotations and labels (its spec is what
// decisions read).
func slimAllocation(obj any) (any, error) {
	a, ok := obj.(*v1.IPAllocation)
	if !ok {
		return obj, nil // a tombstone
	}
	return &v1.IPAllocation{TypeMeta: a.TypeMeta, ObjectMeta: slimMeta(a), Spec: a.Spec}, nil
}
