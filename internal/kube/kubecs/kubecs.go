// Package kubecs answers kube.API with client-go's clientsets, for the
// processes that hold them already (plexusd, tests). It is apart from
// package kube so that the one-shot plugin, which answers kube.API over
// REST with three API groups, does not link the clientsets.
package kubecs

import (
	"context"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/nadclient"
)

// NewClient returns a kube.Client whose requests go through cs (pods,
// events, claims) and nads (NetworkAttachmentDefinitions); confDir is
// searched for NADs with an empty spec. The client only makes requests;
// it starts no watch.
func NewClient(cs kubernetes.Interface, nads nadclient.Interface, confDir string) *kube.Client {
	return kube.New(API{CS: cs, NADs: nads}, confDir)
}

// API answers kube.API with clientsets.
type API struct {
	CS   kubernetes.Interface
	NADs nadclient.Interface
}

var _ kube.API = API{}

func (a API) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return a.CS.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a API) PatchPodStatus(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := a.CS.CoreV1().Pods(namespace).Patch(ctx, name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func (a API) CreateEvent(ctx context.Context, ev *corev1.Event) error {
	_, err := a.CS.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	return err
}

func (a API) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	return a.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a API) GetResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error) {
	return a.CS.ResourceV1().ResourceClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a API) ListResourceSlices(ctx context.Context, fieldSelector string) ([]resourcev1.ResourceSlice, error) {
	list, err := a.CS.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{FieldSelector: fieldSelector})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}
