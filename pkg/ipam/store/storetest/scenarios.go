package storetest

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

const space = "net:"

// testS4 is scenario S4: five pods one after another get .100-.104, a
// Deployment's pod .105, scaled to 3 .106 and .107; a deleted pod's
// address goes to the next pod.
func testS4(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "192.168.91.0/24", "192.168.91.100", "192.168.91.110", "192.168.91.1")
	var got []netip.Addr
	for i := 0; i < 8; i++ {
		got = append(got, mustAlloc(t, s, req(space, r, fmt.Sprintf("c%d", i))))
	}
	expectAddrs(t, "eight pods", got, "192.168.91.100", "192.168.91.101", "192.168.91.102", "192.168.91.103",
		"192.168.91.104", "192.168.91.105", "192.168.91.106", "192.168.91.107")
	if err := s.Release(ctx(t), req(space, r, "c2").Key()); err != nil {
		t.Fatalf("Release c2: %v", err)
	}
	expectAddrs(t, "after deleting .102", []netip.Addr{mustAlloc(t, s, req(space, r, "c8"))}, "192.168.91.102")
	expectAddrs(t, "next", []netip.Addr{mustAlloc(t, s, req(space, r, "c9"))}, "192.168.91.108")
	all := checkConsistent(t, s)
	if len(all) != 9 {
		t.Errorf("List: %d allocations, want 9", len(all))
	}
	for _, a := range all {
		if a.ContainerID == "c8" {
			h := req(space, r, "c8").Holder
			if a.Holder != h || a.Slot != 0 || a.Space != space {
				t.Errorf("holder recorded as %+v, want %+v", a.Holder, h)
			}
		}
	}
}

func testIdempotent(t *testing.T, open func() store.Store) {
	s1, s2 := open(), open()
	r := mkRange(t, "10.1.0.0/24", "", "", "")
	first := mustAlloc(t, s1, req(space, r, "c1"))
	again := mustAlloc(t, s2, req(space, r, "c1"))
	if first != again {
		t.Errorf("second ADD for the same (containerID, ifname) got %s, first got %s", again, first)
	}
	other := req(space, r, "c1")
	other.Holder.IfName = "net2"
	if a := mustAlloc(t, s1, other); a == first {
		t.Errorf("another ifname of the same container got the same address %s", a)
	}
	if n := len(checkConsistent(t, s1)); n != 2 {
		t.Errorf("%d allocations, want 2", n)
	}
}

func testRelease(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.2.0.0/29", "", "", "")
	a := mustAlloc(t, s, req(space, r, "c1"))
	if err := s.Release(ctx(t), req(space, r, "c1").Key()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := s.Release(ctx(t), req(space, r, "c1").Key()); err != nil {
		t.Errorf("second Release: %v, want nil", err)
	}
	if err := s.Release(ctx(t), req(space, r, "never-added").Key()); err != nil {
		t.Errorf("Release of an unknown key: %v, want nil", err)
	}
	if _, err := s.Lookup(ctx(t), req(space, r, "c1").Key()); !isErr(err, store.ErrNotFound) {
		t.Errorf("Lookup after Release: %v, want ErrNotFound", err)
	}
	if b := mustAlloc(t, s, req(space, r, "c2")); b != a {
		t.Errorf("freed %s was not reused: got %s", a, b)
	}
	checkConsistent(t, s)
}

// testOverlapping: ranges of one space never share an address; another
// space (another network_name) is independent.
func testOverlapping(t *testing.T, open func() store.Store) {
	s := open()
	wide := mkRange(t, "10.3.0.0/16", "10.3.0.1", "10.3.0.20", "")
	narrow := mkRange(t, "10.3.0.0/24", "10.3.0.1", "10.3.0.10", "")
	var got []netip.Addr
	for i := 0; i < 6; i++ {
		r := wide
		if i%2 == 1 {
			r = narrow
		}
		got = append(got, mustAlloc(t, s, req(space, r, fmt.Sprintf("c%d", i))))
	}
	expectAddrs(t, "alternating overlapping ranges", got, "10.3.0.1", "10.3.0.2", "10.3.0.3", "10.3.0.4", "10.3.0.5", "10.3.0.6")
	blue := mustAlloc(t, s, req("net:blue", narrow, "c0"))
	expectAddrs(t, "another network_name", []netip.Addr{blue}, "10.3.0.1")
	checkConsistent(t, s)
}

func testExclusions(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.4.0.0/28", "", "", "10.4.0.1", "10.4.0.2/31", "10.4.0.5/32", "10.4.0.8/30")
	var got []netip.Addr
	for i := 0; i < 6; i++ {
		got = append(got, mustAlloc(t, s, req(space, r, fmt.Sprintf("c%d", i))))
	}
	if _, err := s.Allocate(ctx(t), req(space, r, "c6")); !isErr(err, store.ErrExhausted) {
		t.Errorf("seventh Allocate: %v, want ErrExhausted", err)
	}
	expectAddrs(t, "skipping network, gateway, excludes, broadcast", got, "10.4.0.4", "10.4.0.6", "10.4.0.7", "10.4.0.12", "10.4.0.13", "10.4.0.14")
}
