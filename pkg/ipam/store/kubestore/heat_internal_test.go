package kubestore

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Races lost by one node's client reach every other client through the
// space's IPSpace, whose next claims then start spread; an uncontended
// client starts from the lowest free address.
func TestContentionIsSharedThroughTheIndex(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "ipam-heat")
	open := func() *Store {
		s, err := New(env.RESTConfig, Options{Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	r, err := alloc.NewRange(netip.MustParsePrefix("10.43.0.0/24"), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	// Three addresses taken by allocators whose index writes have not
	// landed yet (their IPAllocations only): the next claim loses three
	// races, lowest first.
	for i := 2; i <= 4; i++ {
		addr := netip.MustParseAddr(fmt.Sprintf("10.43.0.%d", i))
		obj := toAllocationObject(store.Allocation{Space: space, Address: addr, Holder: store.Holder{ContainerID: fmt.Sprintf("racer%d", i), IfName: "net1"}})
		if err := b.create(t.Context(), v1.ResourceIPAllocations, obj, &v1.IPAllocation{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Allocate(t.Context(), req("second"))
	if err != nil || got.Address != netip.MustParseAddr("10.43.0.5") || b.Stats().ClaimConflicts != 3 {
		t.Fatalf("second allocation: %v, %v after %d lost races; want 10.43.0.5 after 3", got.Address, err, b.Stats().ClaimConflicts)
	}

	idx, err := open().fetchIndex(t.Context(), space)
	if err != nil {
		t.Fatal(err)
	}
	level, _ := store.ParseHeat(idx.obj.Annotations[v1.AnnotationContention])
	if level < 2.5 || level > 3 {
		t.Fatalf("IPSpace %s carries contention %q, want about 3", idx.obj.Name, idx.obj.Annotations[v1.AnnotationContention])
	}
	c := open()
	if _, err := c.readIndex(t.Context(), space); err != nil {
		t.Fatal(err)
	}
	if bias := c.heat.Bias(space); bias <= store.StrictConflicts {
		t.Fatalf("a client that read the contended index starts with bias %d, want past %d (spread)", bias, store.StrictConflicts)
	}
}
