package plan

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/pkg/netselect"
)

func sels(specs ...string) []*netselect.Selection {
	out := make([]*netselect.Selection, len(specs))
	for i, s := range specs {
		name, ifname, _ := strings.Cut(s, "@")
		out[i] = &netselect.Selection{Namespace: "ns", Name: name, InterfaceName: ifname}
	}
	return out
}

func recorded(specs ...string) []Recorded {
	out := make([]Recorded, len(specs))
	for i, s := range specs {
		sel, ifname, _ := strings.Cut(s, "=")
		out[i] = Recorded{Key: SelectionKey(sels(sel)[0]), IfName: ifname}
	}
	return out
}

func TestReplan(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rec      []Recorded
		want     []*netselect.Selection
		kept     map[int]int
		removed  []int
		added    []int
		ifnames  []string
		errMatch string
	}{
		{name: "unchanged", rec: recorded("a=net1", "b=net2"), want: sels("a", "b"),
			kept: map[int]int{0: 0, 1: 1}, ifnames: []string{"net1", "net2"}},
		{name: "reordered entries keep their names", rec: recorded("a=net1", "b=net2"), want: sels("b", "a"),
			kept: map[int]int{0: 1, 1: 0}, ifnames: []string{"net2", "net1"}},
		{name: "added gets the lowest free name", rec: recorded("a=net1", "b=net3"), want: sels("a", "b", "c"),
			kept: map[int]int{0: 0, 1: 1}, added: []int{2}, ifnames: []string{"net1", "net3", "net2"}},
		{name: "first of two identical goes, the second keeps net2", rec: recorded("a=net1", "a=net2"), want: sels("a"),
			kept: map[int]int{0: 1}, removed: []int{0}, ifnames: []string{"net2"}},
		{name: "a third identical one gets net3", rec: recorded("a=net1", "a=net2"), want: sels("a", "a", "a"),
			kept: map[int]int{0: 0, 1: 1}, added: []int{2}, ifnames: []string{"net1", "net2", "net3"}},
		{name: "a removed name is not given out in the same change", rec: recorded("a=net1", "b=net2"), want: sels("b", "c"),
			kept: map[int]int{0: 1}, removed: []int{0}, added: []int{1}, ifnames: []string{"net2", "net3"}},
		{name: "but may be named explicitly", rec: recorded("a=net1"), want: sels("c@net1"),
			kept: map[int]int{}, removed: []int{0}, added: []int{0}, ifnames: []string{"net1"}},
		{name: "an entry whose content changed is replaced", rec: recorded("a=net1"), want: sels("a@blue"),
			kept: map[int]int{}, removed: []int{0}, added: []int{0}, ifnames: []string{"blue"}},
		{name: "explicit names are kept off auto names", rec: nil, want: sels("a", "b@net1"),
			kept: map[int]int{}, added: []int{0, 1}, ifnames: []string{"net2", "net1"}},
		{name: "everything removed", rec: recorded("a=net1", "b=net2"), want: nil,
			kept: map[int]int{}, removed: []int{0, 1}, ifnames: []string{}},
		{name: "a name that stays cannot be taken", rec: recorded("a=net1"), want: sels("a", "b@net1"),
			errMatch: `networks[1]: interface "net1" of ns/b is in use by an attachment that stays`},
		{name: "nor the cluster network's", rec: nil, want: sels("b@eth0"),
			errMatch: `interface "eth0" of ns/b is in use by a network every pod gets`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Replan(tc.rec, tc.want, []string{"eth0"})
			if tc.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("err = %v, want %q", err, tc.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(c.Kept, tc.kept) || !slices.Equal(c.Removed, tc.removed) || !slices.Equal(c.Added, tc.added) ||
				!slices.Equal(c.IfNames, tc.ifnames) {
				t.Fatalf("got kept %v removed %v added %v names %v\nwant kept %v removed %v added %v names %v",
					c.Kept, c.Removed, c.Added, c.IfNames, tc.kept, tc.removed, tc.added, tc.ifnames)
			}
			if c.Empty() != (len(tc.removed) == 0 && len(tc.added) == 0) {
				t.Fatalf("Empty() = %v", c.Empty())
			}
		})
	}
}
