package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// testIPv6: a /64 hands out ::2 after the gateway ::1, skips the network
// address, and works at the very top of the range (offsets >= 2^63).
func testIPv6(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "2001:db8:64::/64", "", "", "2001:db8:64::1")
	got := []netip.Addr{mustAlloc(t, s, req(space, r, "c0")), mustAlloc(t, s, req(space, r, "c1"))}
	expectAddrs(t, "bottom of the /64", got, "2001:db8:64::2", "2001:db8:64::3")
	top := mkRange(t, "2001:db8:64::/64", "2001:db8:64:0:ffff:ffff:ffff:fffd", "", "")
	got = []netip.Addr{mustAlloc(t, s, req(space, top, "t0")), mustAlloc(t, s, req(space, top, "t1")), mustAlloc(t, s, req(space, top, "t2"))}
	expectAddrs(t, "top of the /64", got, "2001:db8:64:0:ffff:ffff:ffff:fffd", "2001:db8:64:0:ffff:ffff:ffff:fffe", "2001:db8:64:0:ffff:ffff:ffff:ffff")
	if _, err := s.Allocate(ctx(t), req(space, top, "t3")); !isErr(err, store.ErrExhausted) {
		t.Errorf("past the top: %v, want ErrExhausted", err)
	}
	mid := mkRange(t, "2001:db8:64::/64", "2001:db8:64:0:8000::", "", "")
	expectAddrs(t, "upper half", []netip.Addr{mustAlloc(t, s, req(space, mid, "m0"))}, "2001:db8:64:0:8000::")
	checkConsistent(t, s)
}

// testDualStack: one attachment, two slots (IPv4 and IPv6) in one space.
func testDualStack(t *testing.T, open func() store.Store) {
	s := open()
	v4 := mkRange(t, "192.0.2.0/24", "", "", "192.0.2.1")
	v6 := mkRange(t, "2001:db8::/64", "", "", "2001:db8::1")
	for i := 0; i < 2; i++ {
		cid := fmt.Sprintf("c%d", i)
		a := req(space, v4, cid)
		b := req(space, v6, cid)
		b.Slot = 1
		got := []netip.Addr{mustAlloc(t, s, a), mustAlloc(t, s, b)}
		want := []string{fmt.Sprintf("192.0.2.%d", i+2), fmt.Sprintf("2001:db8::%d", i+2)}
		expectAddrs(t, "dual stack "+cid, got, want...)
	}
	if err := s.Release(ctx(t), req(space, v4, "c0").Key()); err != nil {
		t.Fatal(err)
	}
	b := req(space, v6, "c0")
	b.Slot = 1
	if _, err := s.Lookup(ctx(t), b.Key()); err != nil {
		t.Errorf("releasing slot 0 touched slot 1: %v", err)
	}
	checkConsistent(t, s)
}

func testRequested(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.5.0.0/24", "", "", "")
	want := req(space, r, "c1")
	want.Want = netip.MustParseAddr("10.5.0.50")
	expectAddrs(t, "requested", []netip.Addr{mustAlloc(t, s, want)}, "10.5.0.50")
	expectAddrs(t, "requested again", []netip.Addr{mustAlloc(t, s, want)}, "10.5.0.50")
	other := req(space, r, "c2")
	other.Want = want.Want
	if _, err := s.Allocate(ctx(t), other); !isErr(err, store.ErrInUse) {
		t.Errorf("requesting a held address: %v, want ErrInUse", err)
	}
	expectAddrs(t, "dynamic next to it", []netip.Addr{mustAlloc(t, s, req(space, r, "c3"))}, "10.5.0.1")
	checkConsistent(t, s)
}

// testListFree covers the reconciler's API: List with filters, Free by
// address, Spaces and RebuildIndex.
func testListFree(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.6.0.0/24", "", "", "")
	for i := 0; i < 4; i++ {
		rq := req(space, r, fmt.Sprintf("c%d", i))
		if i >= 2 {
			rq.Holder.Node, rq.Holder.Network = "node-b", "net-b"
		}
		mustAlloc(t, s, rq)
	}
	onB, err := s.List(ctx(t), store.Filter{Space: space, Node: "node-b", Network: "net-b"})
	if err != nil || len(onB) != 2 || onB[0].ContainerID != "c2" || onB[1].ContainerID != "c3" {
		t.Fatalf("List node-b: %+v, %v; want c2 and c3", onB, err)
	}
	if err := s.Free(ctx(t), space, netip.MustParseAddr("10.6.0.2")); err != nil {
		t.Fatalf("Free: %v", err)
	}
	if err := s.Free(ctx(t), space, netip.MustParseAddr("10.6.0.99")); err != nil {
		t.Errorf("Free of a free address: %v", err)
	}
	if _, err := s.Lookup(ctx(t), req(space, r, "c1").Key()); !isErr(err, store.ErrNotFound) {
		t.Errorf("Lookup of the freed holder: %v, want ErrNotFound", err)
	}
	if err := s.RebuildIndex(ctx(t), space); err != nil {
		t.Fatalf("RebuildIndex: %v", err)
	}
	expectAddrs(t, "freed address reused", []netip.Addr{mustAlloc(t, s, req(space, r, "c9"))}, "10.6.0.2")
	spaces, err := s.Spaces(ctx(t))
	if err != nil || len(spaces) != 1 || spaces[0].Space != space || spaces[0].Allocated != 4 {
		t.Errorf("Spaces: %+v, %v; want one space with 4 allocated", spaces, err)
	}
	checkConsistent(t, s)
}

func testExhausted(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.7.0.0/30", "", "", "")
	mustAlloc(t, s, req(space, r, "c1"))
	mustAlloc(t, s, req(space, r, "c2"))
	if _, err := s.Allocate(ctx(t), req(space, r, "c3")); !isErr(err, store.ErrExhausted) {
		t.Fatalf("full range: %v, want ErrExhausted", err)
	}
	if err := s.Release(ctx(t), req(space, r, "c1").Key()); err != nil {
		t.Fatal(err)
	}
	expectAddrs(t, "after a release", []netip.Addr{mustAlloc(t, s, req(space, r, "c3"))}, "10.7.0.1")
}

// testConcurrent: 500 allocations by 50 clients at once, in one space
// shared by two overlapping ranges; no address twice, store consistent.
func testConcurrent(t *testing.T, open func() store.Store, exactIndex bool) {
	const clients, perClient = 50, 10
	ranges := []*alloc.Range{mkRange(t, "10.8.0.0/22", "", "", "10.8.0.1"), mkRange(t, "10.8.0.0/23", "", "", "")}
	c := ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for i := 0; i < clients; i++ {
		s := open()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perClient; j++ {
				rq := req(space, ranges[(i+j)%2], fmt.Sprintf("c%d-%d", i, j))
				if _, err := s.Allocate(c, rq); err != nil {
					errs <- fmt.Errorf("client %d allocation %d: %w", i, j, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := open()
	all := checkTruth(t, s)
	if len(all) != clients*perClient {
		t.Errorf("%d allocations, want %d", len(all), clients*perClient)
	}
	checkIndex(t, s, all, exactIndex)
	if err := s.RebuildIndex(ctx(t), space); err != nil {
		t.Fatalf("RebuildIndex: %v", err)
	}
	checkIndex(t, s, all, true)
	// After the burst, allocation is lowest-first again: the holes the
	// spread left low in the pool are filled first.
	free := ranges[0].Size() - uint64(len(all))
	if free == 0 {
		return
	}
	a := mustAlloc(t, s, req(space, ranges[1], "after"))
	set := store.IndexOf(all)
	if want, _ := ranges[1].Next(set, alloc.Num{}); a != want.Addr() {
		t.Errorf("first allocation after the burst: %s, want the lowest free %s", a, want.Addr())
	}
}

// testPool90 fills a /16 to 90% in bulk, then checks allocation still
// returns the lowest free addresses and frees are reused.
func testPool90(t *testing.T, open func() store.Store, opts Options) {
	s := open()
	r := mkRange(t, "10.20.0.0/16", "", "", "")
	const filled = 58980 // 90% of the 65534 usable addresses
	c, cancel := contextWithTimeout(t, opts.FillTimeout)
	defer cancel()
	if err := Fill90(c, s, space, r, opts.FillIndexOnly); err != nil {
		t.Fatalf("filling 90%% of %s: %v", r.Subnet, err)
	}
	small := mkRange(t, "10.21.0.0/24", "", "", "")
	mustAlloc(t, s, req("net:small", small, "w0")) // creates that space's index
	costEmpty := requests(s, func() { mustAlloc(t, s, req("net:small", small, "w1")) })
	var got []netip.Addr
	costFull := requests(s, func() { got = append(got, mustAlloc(t, s, req(space, r, "c0"))) })
	got = append(got, mustAlloc(t, s, req(space, r, "c1")))
	expectAddrs(t, "90% full /16", got, "10.20.230.101", "10.20.230.102")
	if costFull != costEmpty {
		t.Errorf("an allocation costs %d requests in the 90%%-full /16 and %d in a nearly empty /24; want equal", costFull, costEmpty)
	}
	if err := s.Free(ctx(t), space, netip.MustParseAddr("10.20.7.7")); err != nil {
		t.Fatal(err)
	}
	expectAddrs(t, "a hole low in the pool", []netip.Addr{mustAlloc(t, s, req(space, r, "c2"))}, "10.20.7.7")
	spaces, err := s.Spaces(ctx(t))
	for _, sp := range spaces {
		if sp.Space == space && sp.Allocated != filled+2 {
			t.Errorf("Spaces: %+v; want %d allocated in %q", sp, filled+2, space)
		}
	}
	if err != nil || len(spaces) != 2 {
		t.Errorf("Spaces: %+v, %v; want 2 spaces", spaces, err)
	}
}

// requests returns how many requests f made through s (-1 when the store
// does not count them).
func requests(s store.Store, f func()) int64 {
	st, ok := s.(interface{ Stats() store.Stats })
	if !ok {
		f()
		return -1
	}
	before := st.Stats().Requests
	f()
	return st.Stats().Requests - before
}

// Fill90 marks the lowest 90% of r's usable addresses allocated in space:
// imported allocations, or (indexOnly) marks in the index of an
// IndexFiller.
func Fill90(ctx context.Context, s store.Store, space string, r *alloc.Range, indexOnly bool) error {
	n := r.Size() * 9 / 10
	first, _ := r.Next(&alloc.Set{}, alloc.Num{})
	if indexOnly {
		f, ok := s.(IndexFiller)
		if !ok {
			return fmt.Errorf("store %T cannot fill its index", s)
		}
		last, _ := first.Add(alloc.Num{Lo: n - 1})
		return f.FillIndex(ctx, space, first.Addr(), last.Addr())
	}
	fill := make([]store.Allocation, 0, n)
	for a := first; uint64(len(fill)) < n; a, _ = a.Next() {
		h := store.Holder{ContainerID: fmt.Sprintf("fill%d", len(fill)), IfName: "net1", Network: "net-a", Node: "node-a"}
		fill = append(fill, store.Allocation{Space: space, Address: a.Addr(), Holder: h})
	}
	return s.Import(ctx, fill)
}

// testEndedContext: a call whose context has ended (the request was
// cancelled or timed out) fails with ErrUnavailable, which the plugin
// answers with code 11, and changes nothing.
func testEndedContext(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.14.0.0/24", "", "", "")
	held := mustAlloc(t, s, req(space, r, "c1"))
	ended, cancel := context.WithCancel(ctx(t))
	cancel()
	if a, err := s.Allocate(ended, req(space, r, "c2")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Allocate with an ended context: %+v, %v; want ErrUnavailable", a, err)
	}
	if err := s.Release(ended, req(space, r, "c1").Key()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Release with an ended context: %v, want ErrUnavailable", err)
	}
	all := checkConsistent(t, s)
	if len(all) != 1 || all[0].ContainerID != "c1" || all[0].Address != held {
		t.Errorf("after calls with an ended context: %+v, want only c1 holding %s", all, held)
	}
}
