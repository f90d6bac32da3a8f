package plan

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/plexus-cni/plexus/internal/cnierr"

	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Hot-plug: a running pod's networks annotation changed. The identity
// rule, which Replan applies:
//
//   - An attachment is identified by its annotation entry: everything the
//     entry says (namespace, name, interface, ips, mac, cni-args, ...), not
//     its position in the list. An entry whose content changed is a removed
//     attachment and a new one.
//   - Entries with the same identity (the same NAD listed twice, say) are
//     interchangeable. When their number drops by k, the k attached first
//     go and the later ones stay: with "a, a" changed to "a", net1 goes and
//     net2 stays, name and addresses. To remove a given one of several
//     identical entries, give them interface names.
//   - An attachment keeps its interface name for its whole life. A new
//     entry without an interface name gets the lowest netN that no
//     attachment uses, none that the change removes, and none that another
//     entry names. An entry may name an interface the same change removes
//     (removals run first), never one that stays.

// SelectionKey is the identity of an annotation entry.
func SelectionKey(sel *netselect.Selection) string {
	b, err := json.Marshal(sel)
	if err != nil { // a parsed selection always marshals
		panic(err)
	}
	return string(b)
}

// Recorded is one attached network of a running sandbox.
type Recorded struct {
	Key    string // SelectionKey of the entry that attached it
	IfName string
}

// Change is what turns the recorded attachments into the wanted ones.
type Change struct {
	// Kept maps a wanted entry's index to the recorded attachment it is.
	Kept map[int]int
	// Removed are the indexes of recorded attachments no entry wants.
	Removed []int
	// Added are the indexes of wanted entries to attach.
	Added []int
	// IfNames is each wanted entry's interface name.
	IfNames []string
}

// Empty reports whether the change attaches and removes nothing.
func (c Change) Empty() bool { return len(c.Removed) == 0 && len(c.Added) == 0 }

// Replan compares the attached networks with the entries now wanted.
// reserved are interface names no entry may be given (the cluster
// network's and the default networks').
func Replan(recorded []Recorded, wanted []*netselect.Selection, reserved []string) (Change, error) {
	c := Change{Kept: map[int]int{}, IfNames: make([]string, len(wanted))}
	byKey := map[string][]int{} // recorded indexes, in record order
	for i, r := range recorded {
		byKey[r.Key] = append(byKey[r.Key], i)
	}
	wantKey := map[string][]int{} // wanted indexes, in annotation order
	for i, w := range wanted {
		k := SelectionKey(w)
		wantKey[k] = append(wantKey[k], i)
	}
	kept := make([]bool, len(recorded))
	for k, ws := range wantKey {
		rs := byKey[k]
		if len(rs) > len(ws) {
			rs = rs[len(rs)-len(ws):] // the first attached go
		}
		for j, w := range ws {
			if j < len(rs) {
				c.Kept[w] = rs[j]
				kept[rs[j]] = true
				c.IfNames[w] = recorded[rs[j]].IfName
			} else {
				c.Added = append(c.Added, w)
			}
		}
	}
	inUse := map[string]string{} // interface → what keeps it
	for _, n := range reserved {
		inUse[n] = "a network every pod gets"
	}
	taken := map[string]bool{}
	for i, r := range recorded {
		taken[r.IfName] = true // kept, or removed now: not given out at once
		if kept[i] {
			inUse[r.IfName] = "an attachment that stays"
		} else {
			c.Removed = append(c.Removed, i)
		}
	}
	for n := range inUse {
		taken[n] = true
	}
	slices.Sort(c.Added)
	for _, w := range c.Added {
		n := wanted[w].InterfaceName
		if n == "" {
			continue
		}
		if by, ok := inUse[n]; ok {
			return Change{}, cnierr.New(cnierr.InvalidNetConfig,
				"networks[%d]: interface %q of %s/%s is in use by %s", w, n, wanted[w].Namespace, wanted[w].Name, by)
		}
		c.IfNames[w] = n
		taken[n] = true
	}
	next := 1
	for _, w := range c.Added {
		if c.IfNames[w] != "" {
			continue
		}
		for ; taken["net"+strconv.Itoa(next)]; next++ {
		}
		c.IfNames[w] = "net" + strconv.Itoa(next)
		taken[c.IfNames[w]] = true
	}
	return c, nil
}
