package kubestore

import (
	"net/netip"
	"testing"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Races lost by one node's client reach every other client through the
// space's IPSpace, whose claims then spread wider once they lose one; an
// uncontended client starts from the lowest free address.
func TestContentionIsSharedThroughTheIndex(t *testing.T) {
	api := NewFakeAPI(t)
	open := func() *Store { return fakeStore(t, api, "ipam-heat") }
	r := prefixRange(t, "10.43.0.0/24")
	const space = "net:heat"
	req := func(id string) store.Request {
		return store.Request{Space: space, Range: r, Holder: store.Holder{ContainerID: id, IfName: "net1"}}
	}
	a, b := open(), open()
	if got, err := a.Allocate(t.Context(), req("first")); err != nil || got.Address != netip.MustParseAddr("10.43.0.1") {
		t.Fatalf("first allocation: %v, %v; want 10.43.0.1", got.Address, err)
	}
	if b.heat.Bias(space) != 0 {
		t.Fatalf("a quiet space gives a bias of %d", b.heat.Bias(space))
	}
	// Two addresses taken by allocators whose index writes have not landed
	// yet (their IPAllocations only): the lowest free one, and the next
	// lowest, b's candidate once it lost that in a quiet space. b loses
	// both races, then spreads to its slot's address (rank 1 + 10 among the
	// free ones above: .15).
	b.slot = 10
	for _, addr := range []string{"10.43.0.2", "10.43.0.3"} {
		obj := toAllocationObject(store.Allocation{Space: space, Address: netip.MustParseAddr(addr), Holder: store.Holder{ContainerID: "racer-" + addr, IfName: "net1"}})
		if err := b.create(t.Context(), v1.ResourceIPAllocations, obj, &v1.IPAllocation{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Allocate(t.Context(), req("second"))
	if err != nil || got.Address != netip.MustParseAddr("10.43.0.15") || b.Stats().ClaimConflicts != 2 {
		t.Fatalf("second allocation: %v, %v after %d lost races; want 10.43.0.15 after 2", got.Address, err, b.Stats().ClaimConflicts)
	}

	idx, err := open().fetchIndex(t.Context(), space)
	if err != nil {
		t.Fatal(err)
	}
	level, _ := store.ParseHeat(idx.obj.Annotations[v1.AnnotationContention])
	if level < 1.8 || level > 2 {
		t.Fatalf("IPSpace %s carries contention %q, want about 2", idx.obj.Name, idx.obj.Annotations[v1.AnnotationContention])
	}
	c := open()
	if _, err := c.readIndex(t.Context(), space); err != nil {
		t.Fatal(err)
	}
	if l := c.heat.Level(space); l < 1.8 || l > 2 {
		t.Fatalf("a client that read the contended index knows a level of %v, want about 2", l)
	}
}
