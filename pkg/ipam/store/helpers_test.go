package store

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

// A small burst of allocators stays lowest-first: each lost race marks the
// address taken, and the next candidate is the lowest free one; only after
// StrictConflicts losses does Pick spread.
func TestPickLowestFirstForSmallBursts(t *testing.T) {
	r, err := alloc.NewRange(netip.MustParsePrefix("198.51.100.0/24"), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	used := &alloc.Set{}
	for lost := 0; lost <= StrictConflicts; lost++ {
		got, ok := Pick(r, used, lost, rnd)
		want := netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + lost)})
		if !ok || got != want {
			t.Fatalf("after %d lost races Pick = %v, %v; want %v", lost, got, ok, want)
		}
		used.Add(alloc.NumOf(got))
	}
	spread := false
	for range 20 {
		got, _ := Pick(r, used, StrictConflicts+3, rnd)
		spread = spread || got != netip.AddrFrom4([4]byte{198, 51, 100, byte(2 + StrictConflicts)})
	}
	if !spread {
		t.Fatalf("after %d lost races Pick never left the lowest free address", StrictConflicts+3)
	}
}
