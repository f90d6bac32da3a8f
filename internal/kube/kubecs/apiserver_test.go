package kubecs_test

import (
	"errors"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/kube/kubecs"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Both ways of answering kube.API, the in-process plugin's REST clients
// (three API groups, protobuf for core objects, JSON for NADs) and
// plexusd's clientsets, do the same on a real API server: read a pod and a
// NAD, tell a missing one by its error, write network-status through
// pods/status and record events.
func TestClientsOnTheAPIServer(t *testing.T) {
	env := testbed.Require(t)
	ctx := t.Context()
	ns := env.Namespace(t, "kube")
	nads, err := nadclient.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	const config = `{"cniVersion":"1.0.0","type":"macvlan","master":"eth9"}`
	if _, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(ctx, &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "mv"}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	inProcess, err := kube.NewFromKubeconfig(env.Kubeconfig, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*kube.Client{"in process": inProcess, "clientsets": kubecs.NewClient(env.Client, nads, "")} {
		t.Run(name, func(t *testing.T) {
			podName := "p-" + strings.ReplaceAll(name, " ", "-")
			created, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: podName, Annotations: map[string]string{"keep": "me"}},
				Spec:       corev1.PodSpec{NodeName: "node-x", Containers: []corev1.Container{{Name: "c", Image: "none"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pod, err := c.GetPod(ctx, ns, podName)
			if err != nil || pod.UID != created.UID || pod.Spec.NodeName != "node-x" {
				t.Fatalf("GetPod: %v, %v; want UID %s on node-x", pod, err, created.UID)
			}
			if _, err := c.GetPod(ctx, ns, "absent"); !apierrors.IsNotFound(err) {
				t.Errorf("GetPod of a missing pod: %v, want NotFound", err)
			}
			d, err := c.NAD(ctx, ns, "mv")
			if err != nil || !strings.Contains(string(d.Conflist), `"master":"eth9"`) {
				t.Errorf("NAD: %v, %v; want the macvlan config", d, err)
			}
			if _, err := c.NAD(ctx, ns, "absent"); !errors.Is(err, nad.ErrNotFound) {
				t.Errorf("NAD of a missing definition: %v, want nad.ErrNotFound", err)
			}
			const status = `[{"name":"ns/mv","interface":"net1","ips":["198.51.100.7"]}]`
			if err := c.SetNetworkStatus(ctx, ns, podName, status); err != nil {
				t.Fatal(err)
			}
			got, err := env.Client.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
			if err != nil || got.Annotations[netselect.NetworkStatusAnnotation] != status || got.Annotations["keep"] != "me" {
				t.Errorf("after SetNetworkStatus: annotations %v, %v; want network-status set and the others kept", got.Annotations, err)
			}
			if err := c.SetNetworkStatus(ctx, ns, "absent", status); err != nil {
				t.Errorf("SetNetworkStatus on a pod that is gone: %v, want nil", err)
			}
			if err := c.RecordEvents(ctx, pod, []kube.Event{{Type: corev1.EventTypeNormal, Reason: "AddedInterface", Message: "Add net1"}}); err != nil {
				t.Fatal(err)
			}
			evs, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("involvedObject.name", podName).String()})
			if err != nil || len(evs.Items) != 1 || evs.Items[0].Reason != "AddedInterface" || evs.Items[0].InvolvedObject.UID != created.UID {
				t.Errorf("events of %s: %v, %v; want one AddedInterface", podName, evs, err)
			}
		})
	}
}
