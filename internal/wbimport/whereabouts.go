// Package wbimport carries Whereabouts' allocations over to plexus-ipam:
// it reads the IPPools and OverlappingRangeIPReservations
// (whereabouts.cni.cncf.io/v1alpha1), maps every holder whose pod still
// lives to a plexus-ipam allocation of the space its NAD's configuration
// selects, and claims those addresses in plexus-ipam's store, so that
// plexus-ipam never hands out an address a running pod holds. It is
// idempotent (a holder already imported is left alone) and safe while
// pods come and go (each address is claimed create-if-absent; one that a
// new pod took meanwhile is reported, never taken over).
package wbimport

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

// Whereabouts' API group and resources.
var (
	IPPools = schema.GroupVersionResource{Group: "whereabouts.cni.cncf.io", Version: "v1alpha1", Resource: "ippools"}
	// Reservations are the OverlappingRangeIPReservations.
	Reservations = schema.GroupVersionResource{Group: "whereabouts.cni.cncf.io", Version: "v1alpha1", Resource: "overlappingrangeipreservations"}
)

// Holder is who Whereabouts records as holding an address.
type Holder struct {
	// ContainerID is the sandbox (CNI_CONTAINERID).
	ContainerID string `json:"containerID,omitempty"`
	// PodRef is "namespace/name".
	PodRef string `json:"podRef"`
	IfName string `json:"ifName,omitempty"`
}

// Pod splits PodRef.
func (h Holder) Pod() (namespace, name string, ok bool) {
	ns, name, ok := strings.Cut(h.PodRef, "/")
	return ns, name, ok && ns != "" && name != "" && !strings.Contains(name, "/")
}

// Entry is one allocation of an IPPool.
type Entry struct {
	Address netip.Addr
	Holder
}

// Pool is one IPPool.
type Pool struct {
	Name string
	// Range is spec.range; Subnet its masked prefix.
	Range   string
	Subnet  netip.Prefix
	Entries []Entry
	// Bad lists allocations that could not be decoded, with the reason.
	Bad []string
}

// Reservation is one OverlappingRangeIPReservation.
type Reservation struct {
	Name string
	Holder
}

// DecodePool reads an IPPool object. spec.allocations maps the decimal
// offset of each address from the address written in spec.range (its
// network address, as Whereabouts writes it) to the holder.
func DecodePool(u *unstructured.Unstructured) (Pool, error) {
	p := Pool{Name: u.GetName()}
	p.Range, _, _ = unstructured.NestedString(u.Object, "spec", "range")
	base, err := netip.ParsePrefix(p.Range)
	if err != nil {
		return p, fmt.Errorf("ippool %s: spec.range %q: not a CIDR", p.Name, p.Range)
	}
	p.Subnet = base.Masked()
	allocs, _, _ := unstructured.NestedMap(u.Object, "spec", "allocations")
	for off, v := range allocs {
		m, _ := v.(map[string]any)
		h := Holder{ContainerID: str(m, "id"), PodRef: str(m, "podref"), IfName: str(m, "ifname")}
		addr, err := offsetAddr(base.Addr(), off)
		if err == nil && !p.Subnet.Contains(addr) {
			err = fmt.Errorf("%s is outside %s", addr, p.Subnet)
		}
		if err != nil {
			p.Bad = append(p.Bad, fmt.Sprintf("allocation %q (pod %s): %v", off, h.PodRef, err))
			continue
		}
		p.Entries = append(p.Entries, Entry{Address: addr, Holder: h})
	}
	sort.Slice(p.Entries, func(i, j int) bool { return p.Entries[i].Address.Less(p.Entries[j].Address) })
	sort.Strings(p.Bad)
	return p, nil
}

// offsetAddr adds a decimal offset (as Whereabouts writes it: a
// non-negative int64) to base.
func offsetAddr(base netip.Addr, off string) (netip.Addr, error) {
	n, err := strconv.ParseInt(off, 10, 64)
	if err != nil || n < 0 {
		return netip.Addr{}, fmt.Errorf("offset %q: not a non-negative decimal number", off)
	}
	sum, overflow := alloc.NumOf(base).Add(alloc.Num{Lo: uint64(n)})
	a := sum.Addr()
	if overflow || a.Is4() != base.Is4() {
		return netip.Addr{}, fmt.Errorf("offset %s: past the end of the address family", off)
	}
	return a, nil
}

// DecodeReservation reads an OverlappingRangeIPReservation object.
func DecodeReservation(u *unstructured.Unstructured) Reservation {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	return Reservation{Name: u.GetName(), Holder: Holder{ContainerID: str(spec, "containerid"), PodRef: str(spec, "podref"), IfName: str(spec, "ifname")}}
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
