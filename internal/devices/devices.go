// Package devices finds the devices the kubelet gave a pod, so that
// networks naming a resource (NAD annotation k8s.v1.cni.cncf.io/resourceName,
// SR-IOV style) can hand each attachment its device: from device plugins
// through the kubelet's PodResources API, and from DRA ResourceClaims (the
// claim's allocation, then the ResourceSlice device with the
// k8s.cni.cncf.io/resourceName and k8s.cni.cncf.io/deviceID attributes).
// Which attachment gets which device is decided by plan.AssignDevices.
package devices

import (
	"context"
	"errors"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Finder looks up a pod's devices from the sources it has. Either may be
// nil: a nil PodResources asks no kubelet, a nil Claims reads no DRA claims.
type Finder struct {
	PodResources PodResources
	Claims       Claims
}

// PodResources answers which device IDs of which resource the kubelet
// allocated to a pod's containers.
type PodResources interface {
	PodDevices(ctx context.Context, namespace, name string) (map[string][]string, error)
}

// Devices returns the pod's devices by resource name, each list sorted and
// without duplicates. Device-plugin devices come first; DRA devices are
// looked up only for a pod with resource claims.
func (f *Finder) Devices(ctx context.Context, pod *corev1.Pod) (map[string][]string, error) {
	out := map[string][]string{}
	var errs []error
	if f.PodResources != nil {
		devs, err := f.PodResources.PodDevices(ctx, pod.Namespace, pod.Name)
		errs = append(errs, err)
		merge(out, devs)
	}
	if f.Claims != nil && len(pod.Spec.ResourceClaims) > 0 {
		devs, err := ClaimDevices(ctx, f.Claims, pod)
		errs = append(errs, err)
		merge(out, devs)
	}
	for r, ids := range out {
		slices.Sort(ids)
		out[r] = slices.Compact(ids)
	}
	return out, errors.Join(errs...)
}

func merge(into, from map[string][]string) {
	for r, ids := range from {
		into[r] = append(into[r], ids...)
	}
}
