package kubestore

import (
	"errors"
	"net/netip"
	"testing"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// FreeListed frees what a cache showed without reading the allocation
// again (one request fewer than FreeHeld), frees an allocation that changed
// since but is still its key's, and never one that went to another key.
func TestFreeListed(t *testing.T) {
	r := prefixRange(t, "10.46.0.0/24")
	const space = "freelisted"
	s := fakeStore(t, NewFakeAPI(t), "ipam")
	allocate := func(cid string) (store.Allocation, *v1.IPAllocation) {
		t.Helper()
		a, err := s.Allocate(t.Context(), store.Request{Space: space, Range: r, Holder: store.Holder{ContainerID: cid, IfName: "net1", Node: "node-1"}})
		if err != nil {
			t.Fatalf("allocating for %s: %v", cid, err)
		}
		obj, err := s.getAllocation(t.Context(), space, a.Address)
		if err != nil || obj == nil {
			t.Fatalf("reading %s's allocation: %v, %v", cid, obj, err)
		}
		return a, obj
	}
	held := func(a store.Allocation) bool {
		t.Helper()
		_, err := s.Lookup(t.Context(), a.Key())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	indexed := func(addr netip.Addr) bool {
		t.Helper()
		idx, err := s.fetchIndex(t.Context(), space)
		if err != nil || idx.set == nil {
			t.Fatalf("reading the index: %v", err)
		}
		return idx.set.Contains(alloc.NumOf(addr))
	}

	t.Run("unchanged", func(t *testing.T) {
		a, obj := allocate("c1")
		before := s.Stats().Requests
		if err := s.FreeListed(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
		// The attachment's read and delete, the allocation's delete, the
		// index write: no read of the allocation.
		if n := s.Stats().Requests - before; n != 4 {
			t.Errorf("FreeListed made %d requests, want 4", n)
		}
		if held(a) || indexed(a.Address) {
			t.Errorf("%s still held or indexed after FreeListed", a.Address)
		}
	})
	t.Run("changed, same key", func(t *testing.T) {
		a, obj := allocate("c2")
		newer := obj.DeepCopy()
		newer.Labels["touched"] = "yes"
		if err := s.update(t.Context(), v1.ResourceIPAllocations, newer.Name, newer, &v1.IPAllocation{}); err != nil {
			t.Fatal(err)
		}
		if err := s.FreeListed(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
		if held(a) || indexed(a.Address) {
			t.Errorf("%s still held or indexed after FreeListed of an older copy of its key's allocation", a.Address)
		}
	})
	t.Run("gone to another key", func(t *testing.T) {
		old, obj := allocate("c3")
		if err := s.Release(t.Context(), old.Key()); err != nil {
			t.Fatal(err)
		}
		cur, _ := allocate("c4")
		if cur.Address != old.Address {
			t.Fatalf("c4 got %s, want the freed %s", cur.Address, old.Address)
		}
		if err := s.FreeListed(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
		if !held(cur) || !indexed(cur.Address) {
			t.Errorf("FreeListed of c3's stale allocation freed c4's %s", cur.Address)
		}
	})
}
