package devices

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// fakeKubelet serves PodResources for one pod; without Get it answers
// Unimplemented, as a kubelet with the Get gate off does.
type fakeKubelet struct {
	podresources.UnimplementedPodResourcesListerServer
	noGet bool
	pod   *podresources.PodResources
}

func (k *fakeKubelet) Get(_ context.Context, req *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
	if k.noGet {
		return nil, status.Error(codes.Unimplemented, "Get is off")
	}
	if req.PodNamespace != k.pod.Namespace || req.PodName != k.pod.Name {
		return nil, status.Error(codes.NotFound, "no such pod")
	}
	return &podresources.GetPodResourcesResponse{PodResources: k.pod}, nil
}

func (k *fakeKubelet) List(context.Context, *podresources.ListPodResourcesRequest) (*podresources.ListPodResourcesResponse, error) {
	other := &podresources.PodResources{Name: "other", Namespace: "ns", Containers: []*podresources.ContainerResources{
		{Name: "c", Devices: []*podresources.ContainerDevices{{ResourceName: "example.com/vf", DeviceIds: []string{"0000:09:00.0"}}}}}}
	return &podresources.ListPodResourcesResponse{PodResources: []*podresources.PodResources{other, k.pod}}, nil
}

func serve(t *testing.T, k podresources.PodResourcesListerServer) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "kubelet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	podresources.RegisterPodResourcesListerServer(s, k)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return sock
}

func TestKubeletPodDevices(t *testing.T) {
	pod := &podresources.PodResources{Name: "p", Namespace: "ns", Containers: []*podresources.ContainerResources{
		{Name: "a", Devices: []*podresources.ContainerDevices{{ResourceName: "example.com/vf", DeviceIds: []string{"0000:03:00.2"}}}},
		{Name: "b", Devices: []*podresources.ContainerDevices{
			{ResourceName: "example.com/vf", DeviceIds: []string{"0000:03:00.1"}},
			{ResourceName: "example.com/gpu", DeviceIds: []string{"gpu0"}}}},
	}}
	want := map[string][]string{"example.com/vf": {"0000:03:00.1", "0000:03:00.2"}, "example.com/gpu": {"gpu0"}}
	for _, noGet := range []bool{false, true} {
		t.Run(fmt.Sprintf("noGet=%v", noGet), func(t *testing.T) {
			f := &Finder{PodResources: &Kubelet{Socket: serve(t, &fakeKubelet{noGet: noGet, pod: pod})}}
			got, err := f.Devices(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, %v; want %v", got, err, want)
			}
		})
	}
}

func TestKubeletUnavailable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	_, err := (&Kubelet{Socket: sock}).PodDevices(context.Background(), "ns", "p")
	var u *UnavailableError
	if !errors.As(err, &u) || u.Socket != sock {
		t.Fatalf("err = %v, want an UnavailableError naming %s", err, sock)
	}
}

// fakeClaims serves claims and slices from memory.
type fakeClaims struct {
	claims map[string]*resourcev1.ResourceClaim
	slices []resourcev1.ResourceSlice
	lists  int
}

func (f *fakeClaims) ResourceClaim(_ context.Context, ns, name string) (*resourcev1.ResourceClaim, error) {
	c, ok := f.claims[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("resourceclaim %s/%s not found", ns, name)
	}
	return c, nil
}

func (f *fakeClaims) ResourceSlices(_ context.Context, node, driver string) ([]resourcev1.ResourceSlice, error) {
	f.lists++
	var out []resourcev1.ResourceSlice
	for _, s := range f.slices {
		if s.Spec.Driver == driver && (s.Spec.NodeName == nil || *s.Spec.NodeName == node) {
			out = append(out, s)
		}
	}
	return out, nil
}

func strAttr(s string) resourcev1.DeviceAttribute { return resourcev1.DeviceAttribute{StringValue: &s} }

func allocated(results ...resourcev1.DeviceRequestAllocationResult) *resourcev1.ResourceClaim {
	return &resourcev1.ResourceClaim{Status: resourcev1.ResourceClaimStatus{
		Allocation: &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{Results: results}}}}
}

func TestClaimDevices(t *testing.T) {
	node := "n1"
	net := func(name, id string) resourcev1.Device {
		return resourcev1.Device{Name: name, Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
			AttrResourceName: strAttr("example.com/vf"), AttrDeviceID: strAttr(id)}}
	}
	cl := &fakeClaims{
		claims: map[string]*resourcev1.ResourceClaim{
			"ns/p-nic": allocated(
				resourcev1.DeviceRequestAllocationResult{Driver: "nic.example.com", Pool: "n1", Device: "vf-1"},
				resourcev1.DeviceRequestAllocationResult{Driver: "nic.example.com", Pool: "n1", Device: "gpu"}),
			"ns/shared": allocated(resourcev1.DeviceRequestAllocationResult{Driver: "nic.example.com", Pool: "n1", Device: "vf-0"}),
		},
		slices: []resourcev1.ResourceSlice{{Spec: resourcev1.ResourceSliceSpec{
			Driver: "nic.example.com", Pool: resourcev1.ResourcePool{Name: "n1"}, NodeName: &node,
			Devices: []resourcev1.Device{net("vf-0", "0000:03:00.0"), net("vf-1", "0000:03:00.1"), {Name: "gpu"}},
		}}},
	}
	shared, generated := "shared", "p-nic"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Spec: corev1.PodSpec{NodeName: node, ResourceClaims: []corev1.PodResourceClaim{
			{Name: "nic", ResourceClaimTemplateName: &generated}, {Name: "other", ResourceClaimName: &shared}}},
		Status: corev1.PodStatus{ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "nic", ResourceClaimName: &generated}}},
	}
	got, err := (&Finder{Claims: cl}).Devices(context.Background(), pod)
	want := map[string][]string{"example.com/vf": {"0000:03:00.0", "0000:03:00.1"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v (the gpu has no attributes and is skipped)", got, err, want)
	}
	if cl.lists != 1 {
		t.Fatalf("slices listed %d times, want once per driver", cl.lists)
	}

	pod.Status.ResourceClaimStatuses = nil // the claim controller has not caught up
	if _, err := ClaimDevices(context.Background(), cl, pod); !errors.Is(err, ErrClaimPending) {
		t.Fatalf("err = %v, want ErrClaimPending", err)
	}
	pod.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "nic", ResourceClaimName: &generated}}
	cl.claims["ns/shared"] = &resourcev1.ResourceClaim{}
	if _, err := ClaimDevices(context.Background(), cl, pod); !errors.Is(err, ErrClaimPending) {
		t.Fatalf("unallocated claim: err = %v, want ErrClaimPending", err)
	}
}
