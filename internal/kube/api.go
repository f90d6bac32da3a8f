package kube

import (
	"context"
	"fmt"
	"sync"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// API is the requests a Client makes. Errors are the API server's
// (apierrors tells them apart).
type API interface {
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	// PatchPodStatus applies a merge patch to the pod's status subresource.
	PatchPodStatus(ctx context.Context, namespace, name string, patch []byte) error
	CreateEvent(ctx context.Context, ev *corev1.Event) error
	GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)
	GetResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error)
	// ListResourceSlices lists the slices a field selector picks.
	ListResourceSlices(ctx context.Context, fieldSelector string) ([]resourcev1.ResourceSlice, error)
}

// restAPI answers API with one REST client per API group: core and
// resource.k8s.io in protobuf, NADs (a custom resource, which has no
// protobuf form) in JSON. client-go's transport cache gives the three the
// same connections.
type restAPI struct {
	core, resource, nads *rest.RESTClient
}

// scheme holds the three groups restAPI reads and writes, and nothing
// else. It is built on first use, not at package initialisation, so that
// the plugin's commands that make no request (VERSION, a DEL from the
// record) do not pay for it.
var scheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, resourcev1.AddToScheme, nadv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
})

func newRESTAPI(cfg *rest.Config) (*restAPI, error) {
	codecs := serializer.NewCodecFactory(scheme()).WithoutConversion()
	client := func(apiPath string, gv schema.GroupVersion, contentType string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(cfg)
		c.APIPath, c.GroupVersion, c.NegotiatedSerializer = apiPath, &gv, codecs
		c.ContentType, c.AcceptContentTypes = contentType, contentType+",application/json"
		rc, err := rest.RESTClientFor(c)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client for %s: %w", gv, err)
		}
		return rc, nil
	}
	const proto = "application/vnd.kubernetes.protobuf"
	var a restAPI
	var err error
	if a.core, err = client("/api", corev1.SchemeGroupVersion, proto); err != nil {
		return nil, err
	}
	if a.resource, err = client("/apis", resourcev1.SchemeGroupVersion, proto); err != nil {
		return nil, err
	}
	if a.nads, err = client("/apis", nadv1.SchemeGroupVersion, "application/json"); err != nil {
		return nil, err
	}
	return &a, nil
}

func (a *restAPI) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	return out, a.core.Get().Namespace(namespace).Resource("pods").Name(name).Do(ctx).Into(out)
}

func (a *restAPI) PatchPodStatus(ctx context.Context, namespace, name string, patch []byte) error {
	return a.core.Patch(k8stypes.MergePatchType).Namespace(namespace).Resource("pods").Name(name).SubResource("status").
		Body(patch).Do(ctx).Error()
}

func (a *restAPI) CreateEvent(ctx context.Context, ev *corev1.Event) error {
	return a.core.Post().Namespace(ev.Namespace).Resource("events").Body(ev).Do(ctx).Error()
}

func (a *restAPI) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	out := &nadv1.NetworkAttachmentDefinition{}
	return out, a.nads.Get().Namespace(namespace).Resource("network-attachment-definitions").Name(name).Do(ctx).Into(out)
}

func (a *restAPI) GetResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error) {
	out := &resourcev1.ResourceClaim{}
	return out, a.resource.Get().Namespace(namespace).Resource("resourceclaims").Name(name).Do(ctx).Into(out)
}

func (a *restAPI) ListResourceSlices(ctx context.Context, fieldSelector string) ([]resourcev1.ResourceSlice, error) {
	out := &resourcev1.ResourceSliceList{}
	err := a.resource.Get().Resource("resourceslices").Param("fieldSelector", fieldSelector).Do(ctx).Into(out)
	return out.Items, err
}
