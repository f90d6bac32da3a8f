package alloc

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestSetMatchesModel applies random adds and removes to a Set and to a
// map and compares membership, the run invariants and the encoding.
func TestSetMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := NumOf(netip.MustParseAddr("2001:db8::fff0"))
	var s Set
	model := map[uint64]bool{}
	for i := 0; i < 5000; i++ {
		off := uint64(rng.IntN(64))
		n, _ := base.Add(Num{Lo: off})
		if rng.IntN(3) == 0 {
			if got, want := s.Remove(n), model[off]; got != want {
				t.Fatalf("step %d: Remove(+%d) = %v, want %v", i, off, got, want)
			}
			delete(model, off)
		} else {
			if got, want := s.Add(n), !model[off]; got != want {
				t.Fatalf("step %d: Add(+%d) = %v, want %v", i, off, got, want)
			}
			model[off] = true
		}
		checkInvariants(t, &s)
	}
	for off := uint64(0); off < 64; off++ {
		n, _ := base.Add(Num{Lo: off})
		if s.Contains(n) != model[off] {
			t.Errorf("Contains(+%d) = %v, want %v", off, s.Contains(n), model[off])
		}
	}
	if s.Count() != uint64(len(model)) {
		t.Errorf("Count = %d, want %d", s.Count(), len(model))
	}
}

func checkInvariants(t *testing.T, s *Set) {
	t.Helper()
	runs := s.Runs()
	for i, r := range runs {
		if r.Hi.Less(r.Lo) {
			t.Fatalf("run %d inverted: %v", i, r)
		}
		if i > 0 {
			next, _ := runs[i-1].Hi.Next()
			if !next.Less(r.Lo) {
				t.Fatalf("runs %d and %d overlap or touch: %v %v", i-1, i, runs[i-1], r)
			}
		}
	}
	b, _ := s.MarshalBinary()
	var back Set
	if err := back.UnmarshalBinary(b); err != nil || len(back.Runs()) != len(runs) {
		t.Fatalf("round trip: %d runs, err %v; want %d runs", len(back.Runs()), err, len(runs))
	}
}

// TestIndexSizeBound checks the sizes docs/ipam.md states: a /16 with every
// other address taken (the most fragmented it can be), and a /16 at 90%
// split into as many runs as possible.
func TestIndexSizeBound(t *testing.T) {
	base := NumOf(netip.MustParseAddr("10.0.0.0"))
	var alternating Set
	for i := uint64(1); i < 65536; i += 2 {
		n, _ := base.Add(Num{Lo: i})
		alternating.Add(n)
	}
	b, _ := alternating.MarshalBinary()
	if len(alternating.Runs()) != 32768 || len(b) > 2*32768+32 {
		t.Errorf("alternating /16: %d runs, %d bytes; want 32768 runs, <= %d bytes", len(alternating.Runs()), len(b), 2*32768+32)
	}
	// 90% full with the most runs: 6553 holes spread evenly.
	var full Set
	full.AddRun(base, NumOf(netip.MustParseAddr("10.0.255.255")))
	for i := uint64(5); i < 65536; i += 10 {
		n, _ := base.Add(Num{Lo: i})
		full.Remove(n)
	}
	b, _ = full.MarshalBinary()
	if full.Count() < 58982 || len(b) > 3*len(full.Runs())+32 {
		t.Errorf("90%% /16: %d addresses in %d runs, %d bytes", full.Count(), len(full.Runs()), len(b))
	}
	t.Logf("alternating /16: %d bytes; 90%% /16 in %d runs: %d bytes", 2*32768, len(full.Runs()), len(b))
}

func FuzzSetDecode(f *testing.F) {
	var s Set
	s.AddRun(Num{Lo: 5}, Num{Lo: 9})
	s.Add(Num{Hi: 1})
	good, _ := s.MarshalBinary()
	f.Add(good)
	f.Add([]byte{1, 2, 0, 0, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Set
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		checkInvariants(t, &s)
	})
}

// Ranges added to one set count the addresses they hand out together:
// blocked ones (network, broadcast, gateway, exclusions) are left out,
// overlaps count once.
func TestRangeAddTo(t *testing.T) {
	mk := func(cidr, first, last, gw string, ex ...string) *Range {
		var exclude []netip.Prefix
		for _, e := range ex {
			exclude = append(exclude, netip.MustParsePrefix(e))
		}
		addr := func(s string) netip.Addr {
			if s == "" {
				return netip.Addr{}
			}
			return netip.MustParseAddr(s)
		}
		r, err := NewRange(netip.MustParsePrefix(cidr), addr(first), addr(last), addr(gw), exclude)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		ranges []*Range
		want   uint64
	}{
		{"whole /24 with a gateway", []*Range{mk("192.0.2.0/24", "", "", "192.0.2.1")}, 253},
		{"exclusion in the middle", []*Range{mk("192.0.2.0/24", "", "", "", "192.0.2.128/26")}, 254 - 64},
		{"two overlapping ranges", []*Range{mk("192.0.2.0/24", "192.0.2.10", "192.0.2.20", ""), mk("192.0.2.0/24", "192.0.2.15", "192.0.2.30", "")}, 21},
		{"/32", []*Range{mk("192.0.2.7/32", "", "", "")}, 1},
	} {
		var s Set
		for _, r := range tc.ranges {
			r.AddTo(&s)
		}
		if got := s.Count(); got != tc.want {
			t.Errorf("%s: %d addresses, want %d", tc.name, got, tc.want)
		}
		if len(tc.ranges) == 1 && s.Count() != tc.ranges[0].Size() {
			t.Errorf("%s: AddTo counts %d, Size %d", tc.name, s.Count(), tc.ranges[0].Size())
		}
	}
}

// TestPickAndFreeMatchAScan compares Range.Pick and Range.Free, which jump
// over runs, with an address-by-address scan of small ranges with
// exclusions, a gateway and random used addresses.
func TestPickAndFreeMatchAScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		r, err := NewRange(netip.MustParsePrefix("192.0.2.0/26"), netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.60"),
			netip.MustParseAddr("192.0.2.10"), []netip.Prefix{netip.MustParsePrefix("192.0.2.20/30"), netip.MustParsePrefix("192.0.2.56/29")})
		if err != nil {
			t.Fatal(err)
		}
		var used Set
		for i := rng.IntN(60); i > 0; i-- {
			used.Add(NumOf(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(64))})))
		}
		var free []Num
		for c, ok := r.Next(&used, Num{}); ok; {
			free = append(free, c)
			next, _ := c.Next()
			c, ok = r.Next(&used, next)
		}
		for limit := uint64(0); limit < 70; limit++ {
			if got, want := r.Free(&used, limit), min(limit, uint64(len(free))); got != want {
				t.Fatalf("round %d: Free(limit %d) = %d, want %d (free %v)", round, limit, got, want, free)
			}
		}
		for skip := 0; skip < 70; skip++ {
			got, ok := r.Pick(&used, skip)
			if len(free) == 0 {
				if ok {
					t.Fatalf("round %d: Pick(%d) = %s in a full range", round, skip, got.Addr())
				}
				continue
			}
			if want := free[min(skip, len(free)-1)]; !ok || got != want {
				t.Fatalf("round %d: Pick(%d) = %s, %v; want %s", round, skip, got.Addr(), ok, want.Addr())
			}
		}
	}
}
