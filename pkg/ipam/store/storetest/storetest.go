// Package storetest is the conformance suite every store.Store runs: the
// same scenarios, the same expectations, against the Kubernetes API,
// etcd and memory.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Backing creates a fresh, empty backing store for one test and returns a
// function that opens clients of it; every client sees the same data, as
// plugin processes on different nodes do. A client opened with a hook
// tells it about every write it sends (see WriteHook); nil: no hook.
// Clients are closed by the harness when the test ends.
type Backing func(t testing.TB) (open func(h WriteHook) store.Store)

// Options tune the suite to a back end.
type Options struct {
	// FillTimeout bounds importing the 90%-full /16 (default 2 minutes).
	FillTimeout time.Duration
	// ExactIndex says the store keeps its index exact at all times (etcd:
	// one transaction). Otherwise the index is a hint that may miss
	// addresses allocated during a race, never holds a free one after
	// allocations only, and is exact after RebuildIndex.
	ExactIndex bool
	// FillIndexOnly fills the 90%-full /16 through the store's FillIndex
	// method (the index alone) instead of importing allocations, for
	// stores where writing 59,000 objects would take minutes.
	FillIndexOnly bool
}

// IndexFiller is implemented by stores that can mark a block allocated in
// the index alone (kubestore).
type IndexFiller interface {
	FillIndex(ctx context.Context, space string, first, last netip.Addr) error
}

// Run runs every scenario against stores made by newBacking.
func Run(t *testing.T, newBacking Backing, opts Options) {
	if opts.FillTimeout == 0 {
		opts.FillTimeout = 2 * time.Minute
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() store.Store)
	}{
		{"S4Sequence", testS4},
		{"Idempotent", testIdempotent},
		{"ReleaseAndUnknown", testRelease},
		{"OverlappingRanges", testOverlapping},
		{"Exclusions", testExclusions},
		{"IPv6Slash64", testIPv6},
		{"DualStack", testDualStack},
		{"Requested", testRequested},
		{"ListFreeRebuild", testListFree},
		{"Exhausted", testExhausted},
		{"StickyTransfer", testSticky},
		{"FreeHeld", testFreeHeld},
		{"EndedContext", testEndedContext},
		{"Concurrent", func(t *testing.T, open func() store.Store) { testConcurrent(t, open, opts.ExactIndex) }},
		{"Pool90", func(t *testing.T, open func() store.Store) { testPool90(t, open, opts) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := newBacking(t)
			tt.fn(t, func() store.Store { return open(nil) })
		})
	}
	t.Run("Interrupted", func(t *testing.T) { testInterrupted(t, newBacking(t)) })
}

// ctx returns a context bounded so a hung store fails the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// mkRange builds a range: subnet, optional first/last/gateway ("" = none).
func mkRange(t *testing.T, subnet, first, last, gw string, exclude ...string) *alloc.Range {
	t.Helper()
	addr := func(s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(s)
	}
	var ex []netip.Prefix
	for _, e := range exclude {
		ex = append(ex, netip.MustParsePrefix(e))
	}
	r, err := alloc.NewRange(netip.MustParsePrefix(subnet), addr(first), addr(last), addr(gw), ex)
	if err != nil {
		t.Fatalf("range %s: %v", subnet, err)
	}
	return r
}

// req builds a request for container cid, interface net1.
func req(space string, r *alloc.Range, cid string) store.Request {
	return store.Request{Space: space, Range: r, Holder: store.Holder{
		ContainerID: cid, IfName: "net1", Network: "net-a", PodNamespace: "tomcat",
		PodName: "pod-" + cid, PodUID: "uid-" + cid, Node: "node-a", Created: time.Unix(1700000000, 0).UTC(),
	}}
}

// mustAlloc allocates and returns the address.
func mustAlloc(t *testing.T, s store.Store, rq store.Request) netip.Addr {
	t.Helper()
	a, err := s.Allocate(ctx(t), rq)
	if err != nil {
		t.Fatalf("Allocate(%s/%s slot %d): %v", rq.Holder.ContainerID, rq.Holder.IfName, rq.Slot, err)
	}
	if a.Key() != rq.Key() {
		t.Fatalf("Allocate returned key %+v, want %+v", a.Key(), rq.Key())
	}
	return a.Address
}

func expectAddrs(t *testing.T, what string, got []netip.Addr, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// checkConsistent verifies the invariants: addresses unique per space,
// every allocation found by its key, and the index marking exactly the
// allocations of each space.
func checkConsistent(t *testing.T, s store.Store) []store.Allocation {
	t.Helper()
	all := checkTruth(t, s)
	checkIndex(t, s, all, true)
	return all
}

// checkTruth verifies that no address is held twice and that every
// allocation is found by its holder key.
func checkTruth(t *testing.T, s store.Store) []store.Allocation {
	t.Helper()
	all, err := s.List(ctx(t), store.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	seen := map[string]store.Key{}
	for _, a := range all {
		id := a.Space + "|" + a.Address.String()
		if prev, dup := seen[id]; dup {
			t.Errorf("address %s in %q held twice: %+v and %+v", a.Address, a.Space, prev, a.Key())
		}
		seen[id] = a.Key()
		got, err := s.Lookup(ctx(t), a.Key())
		if err != nil || got.Address != a.Address {
			t.Errorf("Lookup(%+v) = %v, %v; want %s", a.Key(), got.Address, err, a.Address)
		}
	}
	return all
}

// checkIndex compares each space's index with the allocations: equal
// counts when exact, else at most as many (a hint may miss addresses
// allocated in a race, but holds no free one).
func checkIndex(t *testing.T, s store.Store, all []store.Allocation, exact bool) {
	t.Helper()
	perSpace := map[string]int{}
	for _, a := range all {
		perSpace[a.Space]++
	}
	spaces, err := s.Spaces(ctx(t))
	if err != nil {
		t.Fatalf("Spaces: %v", err)
	}
	for _, sp := range spaces {
		n := uint64(perSpace[sp.Space])
		if sp.Allocated > n || exact && sp.Allocated != n {
			t.Errorf("space %q: index counts %d allocated, the store holds %d (exact %v)", sp.Space, sp.Allocated, n, exact)
		}
	}
}

func isErr(err, target error) bool { return err != nil && errors.Is(err, target) }

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
