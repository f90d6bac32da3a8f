package ipam

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
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

// liveWorld reads from the API server: a decision to free made from the
// caches is confirmed with it, so that a cache that has not seen a new pod
// or node yet never frees an address.
type liveWorld struct {
	ctx context.Context
	c   kubernetes.Interface
}

func (w liveWorld) Pod(ns, name string) (*corev1.Pod, error) {
	p, err := w.c.CoreV1().Pods(ns).Get(w.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", ns, name, err)
	}
	return p, nil
}

func (w liveWorld) NodeExists(name string) (bool, error) {
	_, err := w.c.CoreV1().Nodes().Get(w.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading node %s: %w", name, err)
	}
	return true, nil
}

func (w liveWorld) StatefulSet(ns, name string) (*appsv1.StatefulSet, error) {
	s, err := w.c.AppsV1().StatefulSets(ns).Get(w.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading statefulset %s/%s: %w", ns, name, err)
	}
	return s, nil
}
