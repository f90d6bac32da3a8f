package kubestore

import (
	"context"
	"fmt"
	"net/netip"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// claimLoop creates the IPAllocation of cand, after making the attachment
// name it; when another holder has it, it marks it taken and tries the
// next candidate.
func (s *Store) claimLoop(ctx context.Context, c *claim, cand netip.Addr) (store.Allocation, error) {
	for {
		if err := s.nameCandidate(ctx, c, cand); err != nil {
			return store.Allocation{}, err
		}
		a := store.Allocation{Space: c.key.Space, Slot: c.key.Slot, Address: cand, Holder: c.req.Holder}
		err := s.create(ctx, v1.ResourceIPAllocations, toAllocationObject(a), &v1.IPAllocation{})
		if err == nil {
			return a, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return store.Allocation{}, classify(err, fmt.Sprintf("creating ipallocation %s", allocationName(c.key.Space, cand)))
		}
		if cand == c.prior {
			if mine, ok := s.owned(ctx, c.key, cand); ok {
				return mine, nil
			}
		}
		if c.req.Want.IsValid() {
			return store.Allocation{}, s.inUse(ctx, c.key.Space, cand)
		}
		c.taken = append(c.taken, alloc.NumOf(cand))
		c.used.Add(alloc.NumOf(cand))
		s.release(c, true)
		c.conflicts++
		s.claimConflicts.Add(1)
		if c.conflicts%refreshEvery == 0 {
			if err := s.refresh(ctx, c, false); err != nil {
				return store.Allocation{}, err
			}
		}
		if cand, err = s.pick(ctx, c); err != nil {
			return store.Allocation{}, err
		}
	}
}

// inUse describes who holds a requested address.
func (s *Store) inUse(ctx context.Context, space string, addr netip.Addr) error {
	obj, _ := s.getAllocation(ctx, space, addr)
	if obj == nil {
		return fmt.Errorf("requested address %s: %w", addr, store.ErrInUse)
	}
	return fmt.Errorf("requested address %s: %w (pod %s/%s, container %s, ifname %s)", addr, store.ErrInUse,
		obj.Spec.PodNamespace, obj.Spec.PodName, obj.Spec.ContainerID, obj.Spec.IfName)
}

// freeOwned deletes the IPAllocation of addr if k holds it, guarded by
// its UID and resourceVersion. free reports that addr has no IPAllocation
// any more (deleted now, or there was none), so that the caller may unmark
// it in the index.
func (s *Store) freeOwned(ctx context.Context, k store.Key, addr netip.Addr) (free bool, err error) {
	obj, err := s.getAllocation(ctx, k.Space, addr)
	if err != nil || obj == nil {
		return err == nil, err
	}
	if a, err := fromAllocationObject(obj); err != nil || !a.Owns(k) {
		return false, nil
	}
	err = s.remove(ctx, v1.ResourceIPAllocations, obj.Name, obj.UID, obj.ResourceVersion)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return err == nil, classify(err, "deleting ipallocation "+obj.Name)
}
