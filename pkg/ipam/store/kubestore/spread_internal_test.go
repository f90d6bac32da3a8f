package kubestore

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Nodes that allocate in one space at exactly the same time all read the
// same index and try its lowest free address first; one wins it. Each of
// the others, having lost that race, spreads to an address of its own and
// gets it on its second try, instead of racing on for the next lowest
// ones: one lost race per allocation, however many nodes allocate at once.
// No address is handed out twice.
func TestConcurrentNodesSpreadAfterALostRace(t *testing.T) {
	for _, c := range []struct {
		prefix string
		nodes  int
	}{{"10.44.0.0/24", 5}, {"10.44.0.0/24", 20}, {"10.45.0.0/16", 50}} {
		t.Run(fmt.Sprintf("%d-nodes-%s", c.nodes, c.prefix), func(t *testing.T) {
			r, err := alloc.NewRange(netip.MustParsePrefix(c.prefix), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			nodes, creates := simultaneous(t, r, c.nodes)
			if want := 2*c.nodes - 1; creates != want {
				t.Errorf("%d IPAllocation creates for %d allocations, want %d: one lost race for all but the first",
					creates, c.nodes, want)
			}
			for i, s := range nodes {
				if lost := s.Stats().ClaimConflicts; lost > 1 {
					t.Errorf("node %d lost %d races, want at most 1", i, lost)
				}
			}
		})
	}
}

// simultaneous makes one allocation on each of n store clients (nodes,
// each its own client as under plexusd) in one space of r at exactly the
// same time (FakeAPI.Gate), checks that no address went to two holders and
// that the store records what Allocate returned, and returns the clients
// and how many IPAllocation creates they sent, lost ones included. Node i
// has spread slot 5*(i+1): NewSlot draws them at random, which tells
// clients apart just as well except when two draws fall close together
// (then one of them may lose a second race).
func simultaneous(t *testing.T, r *alloc.Range, n int) ([]*Store, int) {
	t.Helper()
	api := NewFakeAPI(t)
	var nodes []*Store
	for i := range n {
		s, err := New(api.Config, Options{Namespace: "ipam"})
		if err != nil {
			t.Fatal(err)
		}
		s.slot = uint64(5 * (i + 1))
		nodes = append(nodes, s)
	}
	api.Gate(v1.ResourceIPAllocations, n)
	const space = "net:burst"
	got := make([]store.Allocation, n)
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			got[i], err = s.Allocate(t.Context(), store.Request{Space: space, Range: r,
				Holder: store.Holder{ContainerID: fmt.Sprintf("c%d", i), IfName: "net1", Node: fmt.Sprintf("node-%d", i)}})
			if err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	held := map[netip.Addr]string{}
	for _, a := range got {
		if other, dup := held[a.Address]; dup {
			t.Errorf("%s handed to %s and %s", a.Address, other, a.ContainerID)
		}
		held[a.Address] = a.ContainerID
	}
	all, err := nodes[0].List(t.Context(), store.Filter{Space: space})
	if err != nil || len(all) != n {
		t.Fatalf("List: %d allocations, %v; want %d", len(all), err, n)
	}
	for _, a := range all {
		if held[a.Address] != a.ContainerID {
			t.Errorf("the store says %s holds %s, Allocate said %q", a.ContainerID, a.Address, held[a.Address])
		}
	}
	return nodes, api.Creates(v1.ResourceIPAllocations)
}
