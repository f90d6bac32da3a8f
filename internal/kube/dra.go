package kube

import (
	"context"
	"fmt"

	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// ResourceClaim reads a DRA ResourceClaim (devices.Claims).
func (c *Client) ResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error) {
	claim, err := c.api.GetResourceClaim(ctx, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("get ResourceClaim %s/%s: %w", namespace, name, err)
	}
	return claim, nil
}

// ResourceSlices lists the ResourceSlices of driver published for node
// (devices.Claims): network devices are node-local.
func (c *Client) ResourceSlices(ctx context.Context, node, driver string) ([]resourcev1.ResourceSlice, error) {
	sel := fields.AndSelectors(
		fields.OneTermEqualSelector(resourcev1.ResourceSliceSelectorNodeName, node),
		fields.OneTermEqualSelector(resourcev1.ResourceSliceSelectorDriver, driver))
	items, err := c.api.ListResourceSlices(ctx, sel.String())
	if err != nil {
		return nil, fmt.Errorf("list ResourceSlices of driver %s on node %s: %w", driver, node, err)
	}
	return items, nil
}
