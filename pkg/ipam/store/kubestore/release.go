package kubestore

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Lookup implements store.Store: the first address the attachment names
// that k holds.
func (s *Store) Lookup(ctx context.Context, k store.Key) (store.Allocation, error) {
	att := &v1.IPAttachment{}
	err := s.get(ctx, v1.ResourceIPAttachments, attachmentName(k), att)
	if apierrors.IsNotFound(err) {
		return store.Allocation{}, fmt.Errorf("container %s ifname %s: %w", k.ContainerID, k.IfName, store.ErrNotFound)
	}
	if err != nil {
		return store.Allocation{}, classify(err, "reading ipattachment")
	}
	names := attachmentAddrs(att)
	if len(names) == 0 {
		return store.Allocation{}, fmt.Errorf("ipattachment %s: spec.address %q: not an IP address", att.Name, att.Spec.Address)
	}
	for _, addr := range names {
		obj, err := s.getAllocation(ctx, k.Space, addr)
		if err != nil {
			return store.Allocation{}, err
		}
		if obj != nil {
			if a, err := fromAllocationObject(obj); err == nil && a.Owns(k) {
				return a, nil
			}
		}
	}
	return store.Allocation{}, fmt.Errorf("container %s ifname %s: address %s: %w", k.ContainerID, k.IfName, names[0], store.ErrNotFound)
}

// Release implements store.Store: it deletes every IPAllocation the
// attachment names that k holds, unmarks them (and named addresses
// without an IPAllocation) in the index, and deletes the attachment last,
// so that a DEL interrupted anywhere, or failed by an index write that
// did not reach the API server, is completed by the next one.
func (s *Store) Release(ctx context.Context, k store.Key) error {
	att := &v1.IPAttachment{}
	err := s.get(ctx, v1.ResourceIPAttachments, attachmentName(k), att)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(err, "reading ipattachment")
	}
	var remove []alloc.Num
	for _, addr := range attachmentAddrs(att) {
		free, err := s.freeOwned(ctx, k, addr)
		if err != nil {
			return err
		}
		if free {
			remove = append(remove, alloc.NumOf(addr))
		}
	}
	if len(remove) > 0 {
		if err := s.mark(ctx, k.Space, nil, remove); err != nil {
			return err
		}
	}
	err = s.remove(ctx, v1.ResourceIPAttachments, att.Name, att.UID, att.ResourceVersion)
	if err != nil && !apierrors.IsNotFound(err) {
		return classify(err, "deleting ipattachment "+att.Name)
	}
	return nil
}

// Free implements store.Store. An address without an IPAllocation is
// unmarked in the index, repairing a stale hint.
func (s *Store) Free(ctx context.Context, space string, addr netip.Addr) error {
	obj, err := s.getAllocation(ctx, space, addr)
	if err != nil {
		return err
	}
	if obj == nil {
		return s.mark(ctx, space, nil, []alloc.Num{alloc.NumOf(addr)})
	}
	a, err := fromAllocationObject(obj)
	if err != nil {
		return err
	}
	return s.freeAllocation(ctx, a, obj)
}

// FreeHeld implements store.Store: it frees a.Address only if a's key
// holds it (the IPAllocation's delete is guarded by UID and
// resourceVersion).
func (s *Store) FreeHeld(ctx context.Context, a store.Allocation) error {
	obj, err := s.getAllocation(ctx, a.Space, a.Address)
	if err != nil || obj == nil {
		return err
	}
	if cur, err := fromAllocationObject(obj); err != nil || !cur.Owns(a.Key()) {
		return nil
	}
	return s.freeAllocation(ctx, a, obj)
}

// FreeListed frees the allocation obj as a list or an informer cache
// showed it, without reading it again: its delete is guarded by obj's UID
// and resourceVersion, so only the object that was read is freed. One
// that changed since is read and freed as FreeHeld does, if obj's key
// still holds it. It spares the reclaimer one request per free.
//
// The key's attachment goes first, as in FreeHeld, but before the guard
// has proved the allocation unchanged. It is deleted only if it names
// obj's address; had that address gone to another key meanwhile, an
// attachment of obj's key naming it would be stale anyway.
func (s *Store) FreeListed(ctx context.Context, obj *v1.IPAllocation) error {
	a, err := fromAllocationObject(obj)
	if err != nil {
		return err
	}
	if err = s.freeAllocation(ctx, a, obj); apierrors.IsConflict(err) {
		return s.FreeHeld(ctx, a)
	}
	return err
}

// freeAllocation frees obj, held by a's key: first the key's attachment
// if it points there, then obj, then the index entry. Interrupted after
// the first step, the IPAllocation is still listed, so the reconciler's
// next pass frees it; the other order could leave an attachment nobody
// lists.
func (s *Store) freeAllocation(ctx context.Context, a store.Allocation, obj *v1.IPAllocation) error {
	att := &v1.IPAttachment{}
	err := s.get(ctx, v1.ResourceIPAttachments, attachmentName(a.Key()), att)
	if err == nil && att.Spec.Address == a.Address.String() {
		err = s.remove(ctx, v1.ResourceIPAttachments, att.Name, att.UID, att.ResourceVersion)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return classify(err, "deleting ipattachment "+attachmentName(a.Key()))
	}
	err = s.remove(ctx, v1.ResourceIPAllocations, obj.Name, obj.UID, obj.ResourceVersion)
	if err != nil && !apierrors.IsNotFound(err) {
		return classify(err, "deleting ipallocation "+obj.Name)
	}
	// A stale mark left here is repaired by the reclaimer (an index that
	// marks more than the store holds is rebuilt).
	_ = s.mark(ctx, a.Space, nil, []alloc.Num{alloc.NumOf(a.Address)})
	return nil
}

// List implements store.Store; the filter's fields become label selectors.
func (s *Store) List(ctx context.Context, f store.Filter) ([]store.Allocation, error) {
	var sel []string
	if f.Space != "" {
		sel = append(sel, v1.LabelSpace+"="+store.SpaceID(f.Space))
	}
	if f.Network != "" {
		sel = append(sel, v1.LabelNetwork+"="+labelValue(f.Network))
	}
	if f.Node != "" {
		sel = append(sel, v1.LabelNode+"="+labelValue(f.Node))
	}
	var out []store.Allocation
	err := s.list(ctx, v1.ResourceIPAllocations, strings.Join(sel, ","), func() runtime.Object { return &v1.IPAllocationList{} },
		func(o runtime.Object) error {
			for i := range o.(*v1.IPAllocationList).Items {
				a, err := fromAllocationObject(&o.(*v1.IPAllocationList).Items[i])
				if err != nil {
					s.logf("%v", err)
					continue
				}
				if f.Match(a) {
					out = append(out, a)
				}
			}
			return nil
		})
	if err != nil {
		return nil, classify(err, "listing ipallocations")
	}
	return out, nil
}

// Holders implements store.HolderLister: the space's IPAttachments.
func (s *Store) Holders(ctx context.Context, space string) ([]store.HolderRecord, error) {
	var out []store.HolderRecord
	err := s.list(ctx, v1.ResourceIPAttachments, v1.LabelSpace+"="+store.SpaceID(space), func() runtime.Object { return &v1.IPAttachmentList{} },
		func(o runtime.Object) error {
			for _, it := range o.(*v1.IPAttachmentList).Items {
				addr, _ := netip.ParseAddr(it.Spec.Address)
				if it.Spec.Space == space {
					out = append(out, store.HolderRecord{Key: store.Key{Space: space, ContainerID: it.Spec.ContainerID, IfName: it.Spec.IfName, Slot: it.Spec.Slot}, Address: addr})
				}
			}
			return nil
		})
	return out, classify(err, "listing ipattachments")
}
