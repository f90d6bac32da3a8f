package wbimport

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// planner turns Whereabouts' holders into items (addresses to claim) and
// rows (holders not imported, with the reason).
type planner struct {
	in    Inputs
	now   time.Time
	uses  map[string][]use
	pods  map[string]*corev1.Pod
	items []item
	rows  []Row
	// covered maps "network_name|address" of every pool allocation to
	// its pod reference.
	covered map[string]string
}

// errPodRef marks a holder whose podref names no pod.
var errPodRef = errors.New("not namespace/name")

// pod returns the holder's pod (cached; nil when it does not exist).
func (p *planner) pod(h Holder) (*corev1.Pod, error) {
	ns, name, ok := h.Pod()
	if !ok {
		return nil, fmt.Errorf("podref %q: %w", h.PodRef, errPodRef)
	}
	if p.pods == nil {
		p.pods = map[string]*corev1.Pod{}
	}
	if pod, ok := p.pods[h.PodRef]; ok {
		return pod, nil
	}
	pod, err := p.in.Pod(ns, name)
	if err != nil {
		return nil, fmt.Errorf("reading pod %s: %w", h.PodRef, err)
	}
	p.pods[h.PodRef] = pod
	return pod, nil
}

func (p *planner) row(source string, addr netip.Addr, h Holder) Row {
	return Row{Source: source, Address: addr.String(), Pod: h.PodRef, ContainerID: h.ContainerID, Interface: h.IfName}
}

// pools plans every allocation of every IPPool.
func (p *planner) pools() error {
	for _, pool := range p.in.Pools {
		src := "ippool/" + pool.Name
		for _, bad := range pool.Bad {
			p.rows = append(p.rows, Row{Source: src, Result: Problem, Detail: bad})
		}
		uses := p.uses[pool.Name]
		netName := inferredNetworkName(pool)
		if len(uses) == 0 {
			uses = sliceUses(p.in.Networks, pool)
		}
		if len(uses) == 0 {
			uses = poolUses([]*Network{defaultNetwork(netName, pool.Subnet)})[pool.Name]
		} else {
			netName = uses[0].net.Conf.NetworkName
		}
		for _, e := range pool.Entries {
			p.covered[netName+"|"+e.Address.String()] = e.PodRef
			if err := p.holder(src, e.Address, e.Holder, uses); err != nil {
				return err
			}
		}
	}
	return nil
}

// livePod returns h's pod when it still runs. Otherwise it records row as
// a problem (a holder naming no pod) or as skipped (the pod is gone; why is
// prefixed) and returns nil; err is only the API's.
func (p *planner) livePod(row Row, h Holder, prefix string) (*corev1.Pod, error) {
	pod, err := p.pod(h)
	if errors.Is(err, errPodRef) {
		p.rows = append(p.rows, result(row, Problem, "%v", err))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if why := gone(pod); why != "" {
		p.rows = append(p.rows, result(row, Skipped, "%s%s: the address is free", prefix, why))
		return nil, nil
	}
	return pod, nil
}

// holder plans one holder of addr found in src, among uses.
func (p *planner) holder(src string, addr netip.Addr, h Holder, uses []use) error {
	row := p.row(src, addr, h)
	pod, err := p.livePod(row, h, "")
	if pod == nil || err != nil {
		return err
	}
	cid := h.ContainerID
	if cid == "" {
		cid = "whereabouts/" + h.PodRef // no sandbox recorded: DEL cannot find it, plexus-controller frees it with its pod
	}
	for _, t := range targets(uses, pod, h.IfName, addr) {
		p.items = append(p.items, item{row: row, net: t.Net, alloc: store.Allocation{Space: t.Space, Slot: t.Slot, Address: addr,
			Holder: store.Holder{ContainerID: cid, IfName: h.IfName, PodNamespace: pod.Namespace, PodName: pod.Name,
				PodUID: string(pod.UID), Node: pod.Spec.NodeName, Created: p.now}}})
	}
	return nil
}

// defaultNetwork stands for the NAD of a pool no NAD names (deleted, or
// changed since): its network_name as read from the pool's name, its
// whole subnet, plexus-ipam's defaults otherwise (overlapping ranges,
// the default store).
func defaultNetwork(netName string, subnet netip.Prefix) *Network {
	r, _ := alloc.NewRange(subnet, netip.Addr{}, netip.Addr{}, netip.Addr{}, nil) // a valid prefix always makes a range
	return &Network{Conf: &config.Conf{NetworkName: netName, OverlappingRanges: true, Slots: []config.Slot{{Ranges: []*alloc.Range{r}}}}}
}

// reservations plans the OverlappingRangeIPReservations that no pool
// allocation accounts for: imported only when their pod is alive and
// shows the address in its network-status (otherwise they are what
// Whereabouts leaks when a pool update fails).
func (p *planner) reservations() error {
	var names []string
	for _, n := range p.in.Networks {
		names = append(names, n.Conf.NetworkName)
	}
	for _, r := range p.in.Reservations {
		src := "reservation/" + r.Name
		netName, addr, ok := reservationAddr(r.Name, names)
		if !ok {
			p.rows = append(p.rows, Row{Source: src, Pod: r.PodRef, Result: Problem, Detail: "no address in the name"})
			continue
		}
		if ref, ok := p.covered[netName+"|"+addr.String()]; ok {
			if ref != r.PodRef {
				p.rows = append(p.rows, result(p.row(src, addr, r.Holder), Skipped,
					"the pool allocation of %s names pod %s instead: that one was considered", addr, ref))
			}
			continue
		}
		if err := p.orphan(src, netName, addr, r.Holder); err != nil {
			return err
		}
	}
	return nil
}

// orphan plans a reservation without a pool allocation.
func (p *planner) orphan(src, netName string, addr netip.Addr, h Holder) error {
	row := p.row(src, addr, h)
	pod, err := p.livePod(row, h, "reservation without a pool allocation; ")
	if pod == nil || err != nil {
		return err
	}
	nad := statusNAD(pod, h.IfName, addr)
	for _, n := range p.in.Networks {
		if n.NAD != nad || n.Conf.NetworkName != netName {
			continue
		}
		for slot, s := range n.Conf.Slots {
			for _, r := range s.Ranges {
				if r.Subnet.Contains(addr) {
					return p.holder(src, addr, h, []use{{net: n, slot: slot, space: n.Conf.Space(r)}})
				}
			}
		}
	}
	p.rows = append(p.rows, result(row, Skipped,
		"reservation without a pool allocation, and pod %s does not show %s on %q in its network-status: not imported", h.PodRef, addr, h.IfName))
	return nil
}
