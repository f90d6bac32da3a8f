package inspect

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/pager"

	"github.com/plexus-cni/plexus/pkg/nad"
)

// DefaultChunkSize is kubectl's --chunk-size default.
const DefaultChunkSize = 500

// each lists in pages of c.ChunkSize (Limit and Continue; 0 reads all in
// one request) and calls fn for every item, typed as T.
func each[T runtime.Object](ctx context.Context, c Cluster, opts metav1.ListOptions,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error), fn func(T) error) error {
	p := pager.New(list)
	p.PageSize = c.ChunkSize
	return p.EachListItem(ctx, opts, func(o runtime.Object) error {
		t, ok := o.(T)
		if !ok {
			return fmt.Errorf("list returned a %T", o)
		}
		return fn(t)
	})
}

// eachPod lists the pods of ns ("" for all) matching opts' selectors.
func eachPod(ctx context.Context, c Cluster, ns string, opts metav1.ListOptions, fn func(*corev1.Pod) error) error {
	err := each(ctx, c, opts, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.Client.CoreV1().Pods(ns).List(ctx, o)
	}, fn)
	if err != nil {
		return fmt.Errorf("listing pods%s: %w", inNamespace(ns), err)
	}
	return nil
}

// eachPodMeta lists only the metadata (names, labels, annotations) of the
// pods of ns ("" for all): a fraction of the bytes of whole pods.
func eachPodMeta(ctx context.Context, c Cluster, ns string, fn func(*metav1.PartialObjectMetadata) error) error {
	pods := corev1.SchemeGroupVersion.WithResource("pods")
	err := each(ctx, c, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.Metadata.Resource(pods).Namespace(ns).List(ctx, o)
	}, fn)
	if err != nil {
		return fmt.Errorf("listing pods%s: %w", inNamespace(ns), err)
	}
	return nil
}

// eachNAD lists the NetworkAttachmentDefinitions of ns ("" for all).
func eachNAD(ctx context.Context, c Cluster, ns string, fn func(*nad.NetworkAttachmentDefinition) error) error {
	err := each(ctx, c, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).List(ctx, o)
	}, fn)
	if err != nil {
		return fmt.Errorf("listing NetworkAttachmentDefinitions%s: %w", inNamespace(ns), err)
	}
	return nil
}

// eachEvent lists the events of ns ("" for all) matching opts.
func eachEvent(ctx context.Context, c Cluster, ns string, opts metav1.ListOptions, fn func(*corev1.Event) error) error {
	err := each(ctx, c, opts, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.Client.CoreV1().Events(ns).List(ctx, o)
	}, fn)
	if err != nil {
		return fmt.Errorf("listing events%s: %w", inNamespace(ns), err)
	}
	return nil
}

func inNamespace(ns string) string {
	if ns == "" {
		return " in all namespaces"
	}
	return fmt.Sprintf(" in namespace %q", ns)
}

// NADConfigs returns the non-empty configs of the NADs of ns ("" for all).
func NADConfigs(ctx context.Context, c Cluster, ns string) ([]NetworkConfig, error) {
	var out []NetworkConfig
	err := eachNAD(ctx, c, ns, func(u *nad.NetworkAttachmentDefinition) error {
		cfg := u.Spec.Config
		if strings.TrimSpace(cfg) != "" {
			out = append(out, NetworkConfig{Source: u.GetNamespace() + "/" + u.GetName(), Config: []byte(cfg),
				ResourceName: strings.TrimSpace(u.Annotations[nad.ResourceNameAnnotation])})
		}
		return nil
	})
	return out, err
}
