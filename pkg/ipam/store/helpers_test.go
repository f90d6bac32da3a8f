package store

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

func mustRange(t *testing.T, prefix string) *alloc.Range {
	t.Helper()
	r, err := alloc.NewRange(netip.MustParsePrefix(prefix), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rank returns how many free addresses of r lie below a (its 0-based
// place among the free ones).
func rank(r *alloc.Range, used *alloc.Set, a netip.Addr) int {
	_, last := r.Bounds()
	below := used.Clone()
	below.AddRun(alloc.NumOf(a), last)
	return int(r.Free(below, 1<<20))
}

// A claim's first candidate is the lowest free address, whatever the
// client's slot and the space's contention: sequential allocations get
// exactly the lowest addresses.
func TestPickFirstCandidateIsTheLowestFree(t *testing.T) {
	r := mustRange(t, "198.51.100.0/24")
	rnd := rand.New(rand.NewPCG(1, 2))
	used := &alloc.Set{}
	for i := 0; i < 40; i++ {
		got, ok := Pick(r, used, 0, i%12, rnd.Uint64(), rnd)
		if want := netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)}); !ok || got != want {
			t.Fatalf("allocation %d: Pick = %v, %v; want %v", i, got, ok, want)
		}
		used.Add(alloc.NumOf(got))
	}
}

// In a quiet space a claim that lost its first race takes the next lowest
// free address (a Deployment scaled 1 → 3 with its new pods on two nodes
// gets the two lowest); its second lost race spreads it.
func TestPickQuietSpaceFirstLostRaceTakesTheNextLowest(t *testing.T) {
	r := mustRange(t, "198.51.100.0/24")
	rnd := rand.New(rand.NewPCG(7, 8))
	used := &alloc.Set{}
	used.AddRun(alloc.NumOf(netip.MustParseAddr("198.51.100.1")), alloc.NumOf(netip.MustParseAddr("198.51.100.5")))
	used.Add(alloc.NumOf(netip.MustParseAddr("198.51.100.6"))) // the race it lost
	for slot := range uint64(50) {
		if got, ok := Pick(r, used, 1, 0, slot, rnd); !ok || got != netip.MustParseAddr("198.51.100.7") {
			t.Fatalf("slot %d, quiet space, one lost race: Pick = %v, %v; want the next lowest 198.51.100.7", slot, got, ok)
		}
	}
	spread := map[netip.Addr]bool{}
	for slot := range uint64(50) {
		got, _ := Pick(r, used, 2, 0, slot, rnd)
		spread[got] = true
	}
	if len(spread) < 40 || spread[netip.MustParseAddr("198.51.100.7")] {
		t.Errorf("quiet space, two lost races: 50 slots picked %d distinct addresses, want them spread above the lowest", len(spread))
	}
}

// After a lost race in a contended space, clients that read the same index
// pick different free addresses (their slots differ) within the first 256
// free ones, never the lowest (left to first candidates); one client's
// successive claims land next to each other.
func TestPickSpreadsClientsApartAfterALostRace(t *testing.T) {
	r := mustRange(t, "10.1.0.0/16")
	rnd := rand.New(rand.NewPCG(3, 4))
	used := &alloc.Set{}
	used.AddRun(alloc.NumOf(netip.MustParseAddr("10.1.0.1")), alloc.NumOf(netip.MustParseAddr("10.1.0.50")))
	seen := map[netip.Addr]uint64{}
	for slot := uint64(0); slot < firstSpread-1; slot++ {
		got, ok := Pick(r, used, 1, 1, slot+7*(firstSpread-1), rnd) // slots modulo the window
		if !ok || used.Contains(alloc.NumOf(got)) {
			t.Fatalf("slot %d: Pick = %v, %v; want a free address", slot, got, ok)
		}
		if other, dup := seen[got]; dup {
			t.Fatalf("slots %d and %d both picked %v", other, slot, got)
		}
		seen[got] = slot
		if i := rank(r, used, got); i != int(slot)+1 {
			t.Fatalf("slot %d picked the free address of rank %d, want %d", slot, i, slot+1)
		}
	}
	mine, _ := Pick(r, used, 1, 1, 42, rnd)
	used.Add(alloc.NumOf(mine))
	if next, _ := Pick(r, used, 1, 1, 42, rnd); next != mine.Next() {
		t.Fatalf("the client's next spread candidate is %v, want %v, right after its previous one %v", next, mine.Next(), mine)
	}
}

// The window widens with each further lost race and with the space's
// contention, up to maxSpread, and never holds more than the range's free
// addresses: in a small range every free address may be drawn, and
// nothing else.
func TestPickWindow(t *testing.T) {
	r := mustRange(t, "10.2.0.0/16")
	used := &alloc.Set{}
	rnd := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		lost, bias int
		window     int
	}{
		{2, 0, 256}, {3, 0, 1024}, {4, 0, 4096}, {10, 0, maxSpread},
		{1, 4, 256}, {1, 6, 1024}, {2, 9, 8192}, {1, 30, maxSpread},
	} {
		top := 0
		for range 2000 {
			got, ok := Pick(r, used, c.lost, c.bias, rnd.Uint64(), rnd)
			if !ok {
				t.Fatalf("lost %d bias %d: nothing picked", c.lost, c.bias)
			}
			top = max(top, rank(r, used, got))
		}
		if top >= c.window || top < c.window*3/4 {
			t.Errorf("lost %d bias %d: highest rank picked %d, want just below %d", c.lost, c.bias, top, c.window)
		}
	}

	small := mustRange(t, "192.0.2.0/28") // 14 usable
	used.Add(alloc.NumOf(netip.MustParseAddr("192.0.2.1")))
	used.Add(alloc.NumOf(netip.MustParseAddr("192.0.2.7")))
	seen := map[netip.Addr]bool{}
	for slot := uint64(0); slot < 200; slot++ {
		got, ok := Pick(small, used, 1+int(slot%3), 1, slot, rnd)
		if !ok || used.Contains(alloc.NumOf(got)) || !netip.MustParsePrefix("192.0.2.0/28").Contains(got) {
			t.Fatalf("small range, slot %d: Pick = %v, %v; want a free address", slot, got, ok)
		}
		seen[got] = true
	}
	if len(seen) != 11 || seen[netip.MustParseAddr("192.0.2.2")] {
		t.Errorf("small range: picked %d distinct addresses, want the 11 free ones above the lowest", len(seen))
	}
	used.AddRun(alloc.NumOf(netip.MustParseAddr("192.0.2.1")), alloc.NumOf(netip.MustParseAddr("192.0.2.14")))
	if got, ok := Pick(small, used, 1, 1, 3, rnd); ok {
		t.Errorf("full range: Pick = %v, want none", got)
	}
}
