package devices

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
)

// Device attributes through which a DRA driver says which network
// resource a device belongs to and which ID a CNI plugin knows it by
// (Multus's names).
const (
	AttrResourceName resourcev1.QualifiedName = "k8s.cni.cncf.io/resourceName"
	AttrDeviceID     resourcev1.QualifiedName = "k8s.cni.cncf.io/deviceID"
)

// Claims reads DRA objects: from the API, or from plexusd's informers.
type Claims interface {
	ResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error)
	// ResourceSlices returns the slices of driver on node (and those of
	// driver that are not tied to one node).
	ResourceSlices(ctx context.Context, node, driver string) ([]resourcev1.ResourceSlice, error)
}

// ClaimDevices returns the devices allocated to the pod's resource claims
// that carry both attributes, by their resourceName attribute. A claim not
// yet created or allocated is an error (retryable: the scheduler allocates
// claims before the pod reaches a node, so this is the API lagging);
// devices without the attributes are skipped, as Multus does.
func ClaimDevices(ctx context.Context, cl Claims, pod *corev1.Pod) (map[string][]string, error) {
	out := map[string][]string{}
	slices := map[string][]resourcev1.ResourceSlice{} // by driver
	for _, ref := range pod.Spec.ResourceClaims {
		name, ok := claimName(pod, ref)
		if !ok {
			return nil, fmt.Errorf("pod %s/%s: resource claim %q: %w", pod.Namespace, pod.Name, ref.Name, ErrClaimPending)
		}
		if name == "" {
			continue // the template asked for no claim for this pod
		}
		claim, err := cl.ResourceClaim(ctx, pod.Namespace, name)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: ResourceClaim %s: %w", pod.Namespace, pod.Name, name, err)
		}
		if claim.Status.Allocation == nil {
			return nil, fmt.Errorf("pod %s/%s: ResourceClaim %s: %w", pod.Namespace, pod.Name, name, ErrClaimPending)
		}
		for _, res := range claim.Status.Allocation.Devices.Results {
			if _, seen := slices[res.Driver]; !seen {
				if slices[res.Driver], err = cl.ResourceSlices(ctx, pod.Spec.NodeName, res.Driver); err != nil {
					return nil, fmt.Errorf("ResourceSlices of driver %s on node %s: %w", res.Driver, pod.Spec.NodeName, err)
				}
			}
			if r, id, ok := lookup(slices[res.Driver], res.Pool, res.Device); ok {
				out[r] = append(out[r], id)
			}
		}
	}
	return out, nil
}

// ErrClaimPending is wrapped when a pod's claim is not created or not
// allocated yet.
var ErrClaimPending = fmt.Errorf("not allocated yet")

// claimName is the ResourceClaim a pod's claim refers to: its own name, or
// the one generated from its template (pod status; "" when the template
// produced none). ok is false while the status does not say yet.
func claimName(pod *corev1.Pod, ref corev1.PodResourceClaim) (name string, ok bool) {
	if ref.ResourceClaimName != nil {
		return *ref.ResourceClaimName, true
	}
	for _, st := range pod.Status.ResourceClaimStatuses {
		if st.Name == ref.Name {
			if st.ResourceClaimName == nil {
				return "", true
			}
			return *st.ResourceClaimName, true
		}
	}
	return "", false
}

// lookup finds a device of a pool in slices and returns its resourceName
// and deviceID attributes.
func lookup(slices []resourcev1.ResourceSlice, pool, device string) (resource, id string, ok bool) {
	for _, s := range slices {
		if s.Spec.Pool.Name != pool {
			continue
		}
		for _, d := range s.Spec.Devices {
			if d.Name != device {
				continue
			}
			r, id := str(d.Attributes[AttrResourceName]), str(d.Attributes[AttrDeviceID])
			return r, id, r != "" && id != ""
		}
	}
	return "", "", false
}

func str(a resourcev1.DeviceAttribute) string {
	if a.StringValue == nil {
		return ""
	}
	return *a.StringValue
}
