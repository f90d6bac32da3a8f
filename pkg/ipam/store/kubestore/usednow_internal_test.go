package kubestore

import (
	"net/netip"
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// A claim that copied the index before another claim of the same client
// took an address does not pick that address: its candidates come from
// the client's view as it is when it picks, so one client's concurrent
// allocations never race each other (TestConcurrentAllocationsOfOneClient
// lost one such race under load).
func TestClaimsOfOneClientSeeEachOthersAddresses(t *testing.T) {
	r := prefixRange(t, "10.47.0.0/24")
	const space = "usednow"
	s := fakeStore(t, NewFakeAPI(t), "ipam")
	ctx := t.Context()
	// The first allocation reads the index, so that the next copy comes
	// from the view.
	if _, err := s.Allocate(ctx, store.Request{Space: space, Range: r, Holder: store.Holder{ContainerID: "c0", IfName: "net1"}}); err != nil {
		t.Fatal(err)
	}
	early, err := s.localIndex(ctx, space, false) // a claim's copy, made now
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Allocate(ctx, store.Request{Space: space, Range: r, Holder: store.Holder{ContainerID: "c1", IfName: "net1"}})
	if err != nil {
		t.Fatal(err)
	}
	if early.set.Contains(alloc.NumOf(a.Address)) {
		t.Fatalf("the early copy already has %s: the test shows nothing", a.Address)
	}
	if !s.usedNow(space, early.set, nil).Contains(alloc.NumOf(a.Address)) {
		t.Errorf("a claim that copied the index before c1 took %s may still pick it", a.Address)
	}
	taken := alloc.NumOf(netip.MustParseAddr("10.47.0.200"))
	if !s.usedNow(space, early.set, []alloc.Num{taken}).Contains(taken) {
		t.Errorf("what the claim found taken is missing from what it may not pick")
	}
}
