package informer

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/devices"
	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/kube/kubecs"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// TestDRADevicesOnTheAPIServer looks up a pod's DRA devices on the real API
// server, with a ResourceSlice, a DeviceClass, an allocated ResourceClaim
// and a pod made by the test (the test bed has no kubelet to run a DRA
// driver): through the live client (plexus in process) and through
// plexusd's informers, which must give the same answer.
func TestDRADevicesOnTheAPIServer(t *testing.T) {
	env := testbed.Require(t)
	ctx := t.Context()
	ns := env.Namespace(t, "dra")
	node, driver := "dra-node-"+ns, "nic.plexus.dev"
	rv1 := env.Client.ResourceV1()

	str := func(s string) resourcev1.DeviceAttribute { return resourcev1.DeviceAttribute{StringValue: &s} }
	dev := func(name, id string) resourcev1.Device {
		return resourcev1.Device{Name: name, Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
			devices.AttrResourceName: str("plexus.dev/testnic"), devices.AttrDeviceID: str(id)}}
	}
	slice, err := rv1.ResourceSlices().Create(ctx, &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "dra-"},
		Spec: resourcev1.ResourceSliceSpec{
			Driver: driver, NodeName: &node,
			Pool:    resourcev1.ResourcePool{Name: node, ResourceSliceCount: 1},
			Devices: []resourcev1.Device{dev("vf-0", "0000:03:00.0"), dev("vf-1", "0000:03:00.1"), {Name: "plain"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ResourceSlice: %v", err)
	}
	t.Cleanup(func() { rv1.ResourceSlices().Delete(context.Background(), slice.Name, metav1.DeleteOptions{}) })
	class, err := rv1.DeviceClasses().Create(ctx, &resourcev1.DeviceClass{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "dra-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create DeviceClass: %v", err)
	}
	t.Cleanup(func() { rv1.DeviceClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{}) })

	claim := allocatedClaim(t, env, ns, class.Name, driver, node, "vf-1", "plain")
	pod, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{
			NodeName:       node,
			ResourceClaims: []corev1.PodResourceClaim{{Name: "nic", ResourceClaimName: &claim}},
			Containers: []corev1.Container{{Name: "c", Image: "none",
				Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "nic"}}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}

	want := map[string][]string{"plexus.dev/testnic": {"0000:03:00.1"}}
	inProcess, err := kube.NewFromKubeconfig(env.Kubeconfig, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, live := range map[string]*kube.Client{"in process": inProcess, "plexusd's live client": kubecs.NewClient(env.Client, nil, "")} {
		if got, err := devices.ClaimDevices(ctx, live, pod); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}

	if err := CanCacheDRA(ctx, env.Client); err != nil {
		t.Fatalf("CanCacheDRA with admin credentials: %v", err)
	}
	nads, err := nadclient.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Clients{Watch: env.Client, WatchNADs: nads}, node, 0).WithDRA()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.Start(cctx)
	if !c.WaitForSync(cctx) {
		t.Fatal("caches did not sync")
	}
	if synced := c.Synced(); !synced[ResourceClaims] || !synced[ResourceSlices] {
		t.Fatalf("synced = %v", synced)
	}
	api, _ := c.API(&config.NetConf{}, "")
	claims := api.(devices.Claims)
	poll.Until(t, podWait, "the informers see the claim and the slice", func() (bool, string) {
		got, err := devices.ClaimDevices(ctx, claims, pod)
		return err == nil && reflect.DeepEqual(got, want), "got " + toString(got, err)
	})
	// The cache answers from memory: the slice list has only this node's slices.
	if n := len(c.slices.GetIndexer().List()); n != 1 {
		t.Fatalf("slices cached for %s: %d, want 1", node, n)
	}
}

// allocatedClaim creates a ResourceClaim for class and writes its
// allocation (as the scheduler does) of the given devices of node's pool.
func allocatedClaim(t *testing.T, env *testbed.Env, ns, class, driver, node string, devs ...string) string {
	t.Helper()
	claims := env.Client.ResourceV1().ResourceClaims(ns)
	claim, err := claims.Create(t.Context(), &resourcev1.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "nic"},
		Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{
			Name: "nic", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: class, Count: int64(len(devs))},
		}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ResourceClaim: %v", err)
	}
	var results []resourcev1.DeviceRequestAllocationResult
	for _, d := range devs {
		results = append(results, resourcev1.DeviceRequestAllocationResult{Request: "nic", Driver: driver, Pool: node, Device: d})
	}
	claim.Status.Allocation = &resourcev1.AllocationResult{Devices: resourcev1.DeviceAllocationResult{Results: results}}
	if _, err := claims.UpdateStatus(t.Context(), claim, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("write the claim's allocation: %v", err)
	}
	return claim.Name
}

const podWait = 30 * time.Second

func toString(m map[string][]string, err error) string {
	return fmt.Sprintf("%v (%v)", m, err)
}
