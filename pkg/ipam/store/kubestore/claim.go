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

// claimLoop creates the IPAllocation of cand; when another holder has it,
// it marks it taken and tries the next candidate. Once it holds one, it
// points the attachment there if it does not already (a single update
// however many candidates were lost; if it fails, the allocation is
// undone).
func (s *Store) claimLoop(ctx context.Context, c *claim, cand netip.Addr) (store.Allocation, error) {
	for {
		a := store.Allocation{Space: c.key.Space, Slot: c.key.Slot, Address: cand, Holder: c.req.Holder}
		obj := &v1.IPAllocation{}
		err := s.create(ctx, v1.ResourceIPAllocations, toAllocationObject(a), obj)
		if err == nil {
			return a, s.settleAttachment(ctx, c, obj)
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

// settleAttachment points the attachment at the allocation obj now held;
// when that fails it deletes obj, so that no allocation is left that DEL
// cannot find.
func (s *Store) settleAttachment(ctx context.Context, c *claim, obj *v1.IPAllocation) error {
	if c.att.Spec.Address == obj.Spec.Address {
		return nil
	}
	addr, _ := netip.ParseAddr(obj.Spec.Address)
	err := s.pointAttachment(ctx, c, addr)
	if err == nil {
		return nil
	}
	if rerr := s.remove(ctx, v1.ResourceIPAllocations, obj.Name, obj.UID, obj.ResourceVersion); rerr != nil && !apierrors.IsNotFound(rerr) {
		s.logf("undoing ipallocation %s after a failed attachment update: %v", obj.Name, rerr)
	}
	return err
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

// deleteOwned deletes the IPAllocation of addr if k holds it, guarded by
// its UID and resourceVersion; it reports whether it deleted it.
func (s *Store) deleteOwned(ctx context.Context, k store.Key, addr netip.Addr) (bool, error) {
	obj, err := s.getAllocation(ctx, k.Space, addr)
	if err != nil || obj == nil {
		return false, err
	}
	if a, err := fromAllocationObject(obj); err != nil || !a.Owns(k) {
		return false, nil
	}
	err = s.remove(ctx, v1.ResourceIPAllocations, obj.Name, obj.UID, obj.ResourceVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, classify(err, "deleting ipallocation "+obj.Name)
}
