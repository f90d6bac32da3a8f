package kubestore

import (
	"context"
	"fmt"
	"net/netip"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Transfer implements store.Store. The new holder's IPAttachment is
// written first, then the IPAllocation is updated to the new holder
// (guarded by its resourceVersion: that update is the hand-over), then the
// old IPAttachment is deleted. Interrupted after the first step, a
// dangling attachment points at an address its key does not hold (which
// Lookup and Release check); after the second, the old key's attachment
// points at an address it no longer holds, which its DEL removes.
func (s *Store) Transfer(ctx context.Context, k store.Key, to store.Holder) (store.Allocation, error) {
	cur, err := s.Lookup(ctx, k)
	if err != nil {
		return store.Allocation{}, fmt.Errorf("transfer: %w", err)
	}
	nk := store.Key{Space: k.Space, ContainerID: to.ContainerID, IfName: to.IfName, Slot: k.Slot}
	if nk == k {
		return cur, nil
	}
	if err := s.claimAttachment(ctx, nk, to, cur.Address); err != nil {
		return store.Allocation{}, err
	}
	obj, err := s.getAllocation(ctx, k.Space, cur.Address)
	if err != nil {
		return store.Allocation{}, err
	}
	if obj == nil {
		return store.Allocation{}, fmt.Errorf("transfer of %s: %w", cur.Address, store.ErrNotFound)
	}
	if a, err := fromAllocationObject(obj); err != nil || !a.Owns(k) {
		return store.Allocation{}, fmt.Errorf("transfer of %s: no longer held by container %s ifname %s: %w", cur.Address, k.ContainerID, k.IfName, store.ErrNotFound)
	}
	next := cur
	next.Holder = to
	upd := toAllocationObject(next)
	upd.ResourceVersion = obj.ResourceVersion
	if err := s.update(ctx, v1.ResourceIPAllocations, upd.Name, upd, &v1.IPAllocation{}); err != nil {
		return store.Allocation{}, classify(err, "updating ipallocation "+upd.Name)
	}
	att := &v1.IPAttachment{}
	err = s.get(ctx, v1.ResourceIPAttachments, attachmentName(k), att)
	if err == nil && att.Spec.Address == cur.Address.String() {
		err = s.remove(ctx, v1.ResourceIPAttachments, att.Name, att.UID, att.ResourceVersion)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		s.logf("transfer of %s: deleting the old ipattachment %s: %v", cur.Address, attachmentName(k), err)
	}
	return next, nil
}

// claimAttachment creates nk's IPAttachment pointing at addr, or points an
// existing one there when the address it names is not held by nk; when nk
// holds another address, the result is store.ErrInUse.
func (s *Store) claimAttachment(ctx context.Context, nk store.Key, h store.Holder, addr netip.Addr) error {
	err := s.create(ctx, v1.ResourceIPAttachments, toAttachmentObject(nk, h, addr, netip.Addr{}), &v1.IPAttachment{})
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return classify(err, "creating ipattachment")
	}
	old := &v1.IPAttachment{}
	if err := s.get(ctx, v1.ResourceIPAttachments, attachmentName(nk), old); err != nil {
		return classify(err, "reading ipattachment")
	}
	if held, err := netip.ParseAddr(old.Spec.Address); err == nil && held != addr {
		if _, ok := s.owned(ctx, nk, held); ok {
			return fmt.Errorf("transfer to container %s ifname %s: holds %s: %w", nk.ContainerID, nk.IfName, held, store.ErrInUse)
		}
	}
	obj := toAttachmentObject(nk, h, addr, netip.Addr{})
	obj.ResourceVersion = old.ResourceVersion
	return classify(s.update(ctx, v1.ResourceIPAttachments, obj.Name, obj, &v1.IPAttachment{}), "updating ipattachment")
}
