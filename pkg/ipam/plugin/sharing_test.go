package plugin

import (
	"fmt"
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
)

// wbModel says whether Whereabouts keeps two NADs from handing out one
// address: they share the IPPool (same range network and network_name),
// or both keep per-address reservations (overlapping ranges enabled)
// under the same network_name.
func wbModel(a, b sharingNAD) bool {
	return a.pool() == b.pool() || a.overlap && b.overlap && a.net == b.net
}

type sharingNAD struct {
	cidr, first, last, net string
	overlap                bool
}

func (n sharingNAD) pool() string {
	c, err := config.Loader{Files: config.OSFiles{}}.Load([]byte(n.conf("x")), config.Args{})
	if err != nil {
		panic(err)
	}
	return config.WhereaboutsPoolName(c.NetworkName, c.Slots[0].Ranges[0].Subnet)
}

func (n sharingNAD) conf(name string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"ipam":{"type":"plexus-ipam","range":%q,"range_start":%q,"range_end":%q,
		"network_name":%q,"enable_overlapping_ranges":%v}}`, name, n.cidr, n.first, n.last, n.net, n.overlap)
}

// Two NADs whose ranges overlap inside the same or overlapping range
// networks: plexus-ipam keeps them from handing out one address exactly
// when Whereabouts would. NAD a's range is filled first; b's first
// address shows whether a's addresses were off limits for b.
func TestPoolSharingMatchesWhereabouts(t *testing.T) {
	a := func(cidr, net string, overlap bool) sharingNAD {
		return sharingNAD{cidr: cidr, first: "192.0.2.10", last: "192.0.2.20", net: net, overlap: overlap}
	}
	b := func(cidr, net string, overlap bool) sharingNAD {
		return sharingNAD{cidr: cidr, first: "192.0.2.15", last: "192.0.2.25", net: net, overlap: overlap}
	}
	for _, tc := range []struct {
		name  string
		a, b  sharingNAD
		share bool
	}{
		{"same CIDR, no network_name", a("192.0.2.0/24", "", true), b("192.0.2.0/24", "", true), true},
		{"same CIDR, host bits in one range", a("192.0.2.0/24", "", true), b("192.0.2.77/24", "", true), true},
		{"same CIDR, distinct network_name", a("192.0.2.0/24", "blue", true), b("192.0.2.0/24", "red", true), false},
		{"same CIDR, one network_name", a("192.0.2.0/24", "blue", true), b("192.0.2.0/24", "", true), false},
		{"overlapping CIDRs, no network_name", a("192.0.2.0/24", "", true), b("192.0.2.0/25", "", true), true},
		{"overlapping CIDRs, distinct network_name", a("192.0.2.0/24", "blue", true), b("192.0.2.0/25", "red", true), false},
		{"overlapping CIDRs, overlapping ranges disabled", a("192.0.2.0/24", "", false), b("192.0.2.0/25", "", false), false},
		{"same CIDR, overlapping ranges disabled", a("192.0.2.0/24", "", false), b("192.0.2.0/24", "", false), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := wbModel(tc.a, tc.b); got != tc.share {
				t.Fatalf("the Whereabouts model says share=%v; the case expects %v", got, tc.share)
			}
			h := newHarness(t)
			for i := range 11 {
				h.add(fmt.Sprintf("a%d", i), tc.a.conf("net-a"))
			}
			first := h.add("b0", tc.b.conf("net-b"))[0]
			want := "192.0.2.15"
			if tc.share {
				want = "192.0.2.21"
			}
			if first[:len(want)] != want {
				t.Errorf("b's first address %s, want %s (share=%v)", first, want, tc.share)
			}
		})
	}
}

// The one documented difference: with the same range network, a NAD
// with enable_overlapping_ranges false shares Whereabouts' IPPool with
// one that has it enabled, but has an address space of its own in
// plexus-ipam (docs/migrate-whereabouts.md).
func TestPoolSharingMixedOverlap(t *testing.T) {
	x := sharingNAD{cidr: "192.0.2.0/24", first: "192.0.2.10", last: "192.0.2.20", overlap: true}
	y := sharingNAD{cidr: "192.0.2.0/24", first: "192.0.2.15", last: "192.0.2.25", overlap: false}
	if !wbModel(x, y) {
		t.Fatal("the Whereabouts model should share")
	}
	h := newHarness(t)
	for i := range 11 {
		h.add(fmt.Sprintf("x%d", i), x.conf("net-x"))
	}
	if got := h.add("y0", y.conf("net-y"))[0]; got[:len("192.0.2.15/")] != "192.0.2.15/" {
		t.Errorf("y's first address %s, want 192.0.2.15 (its own space)", got)
	}
}
