package wbimport

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Network is one NAD's IPAM configuration of type whereabouts or
// plexus-ipam (both read the same keys), parsed as plexus-ipam parses it.
type Network struct {
	// NAD is "namespace/name".
	NAD  string
	Conf *config.Conf
}

// use is one range of one network that a Whereabouts pool name stands for.
type use struct {
	net   *Network
	slot  int
	space string
}

// Target is where one holder's address goes: a space (and the slot of
// the holder key) of one network's configuration.
type Target struct {
	Net   *Network
	Slot  int
	Space string
}

// Inputs are what an import reads.
type Inputs struct {
	Pools        []Pool
	Reservations []Reservation
	Networks     []*Network
	// Unusable are NADs whose configuration plexus-ipam rejects, with
	// the reason: reported, and their pools imported as if no NAD named
	// them.
	Unusable map[string]error
	// Pod returns a pod (nil when it does not exist).
	Pod func(namespace, name string) (*corev1.Pod, error)
}

// poolUses maps each Whereabouts pool name to the ranges that use it.
func poolUses(nets []*Network) map[string][]use {
	out := map[string][]use{}
	for _, n := range nets {
		for slot, s := range n.Conf.Slots {
			for _, r := range s.Ranges {
				name := config.WhereaboutsPoolName(n.Conf.NetworkName, r.Subnet)
				u := use{net: n, slot: slot, space: n.Conf.Space(r)}
				if !slices.Contains(out[name], u) {
					out[name] = append(out[name], u)
				}
			}
		}
	}
	return out
}

// sliceUses finds the ranges a node-slice pool (Whereabouts' Fast IPAM,
// node_slice_size: named "[network_name-]<node>-<slice>") is cut from: a
// range of a network whose name the pool's starts with, whose range
// network holds the slice.
func sliceUses(nets []*Network, p Pool) []use {
	var out []use
	for _, n := range nets {
		if nn := n.Conf.NetworkName; nn != "" && !strings.HasPrefix(p.Name, nn+"-") {
			continue
		}
		for slot, s := range n.Conf.Slots {
			for _, r := range s.Ranges {
				if r.Subnet.Bits() < p.Subnet.Bits() && r.Subnet.Contains(p.Subnet.Addr()) {
					out = append(out, use{net: n, slot: slot, space: n.Conf.Space(r)})
				}
			}
		}
	}
	return out
}

// inferredNetworkName reads network_name from a pool's name: what comes
// before the spelled range and its '-'.
func inferredNetworkName(p Pool) string {
	suffix := config.WhereaboutsPoolName("", p.Subnet)
	return strings.TrimSuffix(strings.TrimSuffix(p.Name, suffix), "-")
}

// targets returns where a holder's address goes: the range of the NAD
// its pod's network-status shows on that interface with that address;
// when none does, every distinct space and slot the pool's NADs give it
// (an address held in a space it may not belong to only keeps it from
// being handed out there, until its pod is gone).
func targets(uses []use, pod *corev1.Pod, ifname string, addr netip.Addr) []Target {
	if nad := statusNAD(pod, ifname, addr); nad != "" {
		for _, u := range uses {
			if u.net.NAD == nad {
				return []Target{{Net: u.net, Slot: u.slot, Space: u.space}}
			}
		}
	}
	var out []Target
	for _, u := range uses {
		t := Target{Net: u.net, Slot: u.slot, Space: u.space}
		if !slices.ContainsFunc(out, func(o Target) bool { return o.Space == t.Space && o.Slot == t.Slot }) {
			out = append(out, t)
		}
	}
	return out
}

// statusNAD returns the NAD ("namespace/name") the pod's network-status
// shows attached on ifname with addr, or "".
func statusNAD(pod *corev1.Pod, ifname string, addr netip.Addr) string {
	var entries []netstatus.Entry
	if pod == nil || json.Unmarshal([]byte(pod.Annotations[netselect.NetworkStatusAnnotation]), &entries) != nil {
		return ""
	}
	for _, e := range entries {
		if e.Interface != ifname {
			continue
		}
		for _, ip := range e.IPs {
			if a, err := netip.ParseAddr(ip); err == nil && a == addr {
				if !strings.Contains(e.Name, "/") {
					return pod.Namespace + "/" + e.Name
				}
				return e.Name
			}
		}
	}
	return ""
}

// gone says why a pod does not hold an address any more ("" when it
// does): it does not exist, or it has ended.
func gone(pod *corev1.Pod) string {
	switch {
	case pod == nil:
		return "the pod no longer exists"
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return fmt.Sprintf("the pod has ended (%s)", pod.Status.Phase)
	}
	return ""
}

// reservationAddr reads the address (and network_name) from an
// OverlappingRangeIPReservation's name, preferring the longest known
// network_name it starts with.
func reservationAddr(name string, networkNames []string) (string, netip.Addr, bool) {
	slices.SortFunc(networkNames, func(a, b string) int { return len(b) - len(a) })
	for _, n := range append(networkNames, "") {
		rest := name
		if n != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(name, n+"-"); !ok {
				continue
			}
		}
		if a, ok := parseSpelledAddr(rest); ok {
			return n, a, true
		}
	}
	return "", netip.Addr{}, false
}

// parseSpelledAddr parses an address spelled with '-' for ':'.
func parseSpelledAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return a, true
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(s, "-", ":"))
	return a, err == nil && a.Is6()
}
