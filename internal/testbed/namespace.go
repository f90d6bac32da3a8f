package testbed

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
)

const (
	// LabelTestbed marks namespaces created by Namespace.
	LabelTestbed   = "plexus.dev/testbed"
	maxPrefixLen   = 40
	cleanupTimeout = 60 * time.Second
)

// Namespace creates a namespace named <prefix>-<random> and removes it and
// everything in it when the test ends. The test bed runs no controllers, so
// the cleanup does the namespace controller's work itself: it deletes every
// namespaced resource in it (pods with grace period 0) and then finalizes
// the namespace.
func (e *Env) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: sanitizePrefix(prefix) + "-",
		Labels:       map[string]string{LabelTestbed: "true"},
	}}
	created, err := e.Client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace with prefix %q: %v", prefix, err)
	}
	name := created.Name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := e.purgeNamespace(ctx, name); err != nil {
			t.Errorf("removing namespace %q: %v", name, err)
		}
	})
	return name
}

// sanitizePrefix turns any string into the start of a DNS-1123 label.
func sanitizePrefix(prefix string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > maxPrefixLen {
		s = s[:maxPrefixLen]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		return "test"
	}
	return s
}

func (e *Env) purgeNamespace(ctx context.Context, name string) error {
	gvrs, err := e.namespacedResources()
	if err != nil {
		return err
	}
	for _, gvr := range gvrs {
		err := e.Dynamic.Resource(gvr).Namespace(name).DeleteCollection(ctx, forceDelete(), metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
			return fmt.Errorf("deleting %s in namespace %q: %w", gvr.String(), name, err)
		}
	}
	return e.finalizeNamespace(ctx, name)
}

// namespacedResources lists the namespaced resources that can be listed and
// deleted as a collection, in their preferred versions.
func (e *Env) namespacedResources() ([]schema.GroupVersionResource, error) {
	lists, err := discovery.ServerPreferredNamespacedResources(e.Client.Discovery())
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discovering namespaced resources: %w", err)
	}
	verbs := discovery.SupportsAllVerbs{Verbs: []string{"list", "deletecollection"}}
	set, err := discovery.GroupVersionResources(discovery.FilteredBy(verbs, lists))
	if err != nil {
		return nil, fmt.Errorf("parsing discovered resources: %w", err)
	}
	gvrs := make([]schema.GroupVersionResource, 0, len(set))
	for gvr := range set {
		gvrs = append(gvrs, gvr)
	}
	return gvrs, nil
}

// finalizeNamespace deletes the namespace, clears its finalizers (no
// namespace controller runs here) and waits until it is gone.
func (e *Env) finalizeNamespace(ctx context.Context, name string) error {
	nsClient := e.Client.CoreV1().Namespaces()
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	if err := nsClient.Delete(ctx, name, opts); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting: %w", err)
	}
	ns, err := nsClient.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	ns.Spec.Finalizers = nil
	if _, err := nsClient.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("clearing spec.finalizers: %w", err)
	}
	if err := nsClient.Delete(ctx, name, opts); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting after finalize: %w", err)
	}
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := nsClient.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func forceDelete() metav1.DeleteOptions {
	zero := int64(0)
	background := metav1.DeletePropagationBackground
	return metav1.DeleteOptions{GracePeriodSeconds: &zero, PropagationPolicy: &background}
}
