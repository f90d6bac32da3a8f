package inspect

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// PoolDetail is one pool, its holders and the inconsistencies found.
type PoolDetail struct {
	*IPAMPool
	Holders  []PoolHolder `json:"holders"`
	Problems []string     `json:"problems"`
}

// PoolHolder is one allocated address.
type PoolHolder struct {
	Address   string    `json:"address"`
	Pod       string    `json:"pod,omitempty"`
	PodUID    string    `json:"podUID,omitempty"`
	Container string    `json:"container"`
	Interface string    `json:"interface"`
	Node      string    `json:"node,omitempty"`
	Created   time.Time `json:"created"`
	// Reserved: a sticky address kept for the pod name, or for its
	// IPAMClaim, held by no pod.
	Reserved bool `json:"reserved,omitempty"`
	// Claim is the IPAMClaim ("namespace/name") the address belongs to.
	Claim string `json:"claim,omitempty"`
}

// FindPool returns the pool named name (in storeName, when not empty).
// A space's name (SpaceName) selects the whole space: its one pool, or
// all its pools together.
func FindPool(pools []*IPAMPool, name, storeName string) (*IPAMPool, error) {
	var found, ofSpace []*IPAMPool
	var names []string
	for _, p := range pools {
		if storeName != "" && p.Store != storeName {
			continue
		}
		if p.Name == name {
			found = append(found, p)
		} else if p.SpaceName == name {
			ofSpace = append(ofSpace, p)
		}
		names = append(names, p.Store+" "+p.Name)
	}
	if len(found) == 0 && len(ofSpace) > 0 {
		found = wholeSpaces(ofSpace)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("pool %q: not found (pools: %s)", name, strings.Join(names, ", "))
	}
	var stores []string
	for _, p := range found {
		stores = append(stores, p.Store)
	}
	return nil, fmt.Errorf("pool %q: in several stores (%s): choose one with --store", name, strings.Join(stores, ", "))
}

// wholeSpaces merges the pools of each space (per store) into one.
func wholeSpaces(pools []*IPAMPool) []*IPAMPool {
	var out []*IPAMPool
	byKey := map[string]*IPAMPool{}
	for _, p := range pools {
		k := p.Store + "\x00" + p.Space
		m := byKey[k]
		if m == nil {
			m = &IPAMPool{Name: p.SpaceName, Store: p.Store, SpaceName: p.SpaceName, Space: p.Space, Indexed: p.Indexed,
				ranges: map[string]*alloc.Range{}, spaceAllocs: p.spaceAllocs, st: p.st}
			for _, a := range p.spaceAllocs {
				m.add(a)
			}
			byKey[k] = m
			out = append(out, m)
		}
		for rk, r := range p.ranges {
			m.ranges[rk] = r
		}
		for _, n := range p.Networks {
			if !slices.Contains(m.Networks, n) {
				m.Networks = append(m.Networks, n)
			}
		}
	}
	for _, m := range out {
		m.finish()
	}
	return out
}

// ShowPool lists p's holders and checks it: index against allocations,
// holder records against allocations, allocations against their pods.
func ShowPool(ctx context.Context, c Cluster, p *IPAMPool) (*PoolDetail, error) {
	d := &PoolDetail{IPAMPool: p, Holders: []PoolHolder{}, Problems: []string{}}
	for _, a := range p.allocs {
		h := PoolHolder{Address: a.Address.String(), PodUID: a.PodUID, Container: a.ContainerID, Interface: a.IfName,
			Node: a.Node, Created: a.Created.UTC(), Reserved: a.Reserved()}
		if a.PodName != "" {
			h.Pod = a.PodNamespace + "/" + a.PodName
		}
		if a.Claim != "" {
			h.Claim = a.PodNamespace + "/" + a.Claim
		}
		d.Holders = append(d.Holders, h)
	}
	if p.Indexed != uint64(len(p.spaceAllocs)) {
		d.problem("index of space %s marks %d addresses allocated, the store holds %d (plexus-controller rebuilds it)",
			p.SpaceName, p.Indexed, len(p.spaceAllocs))
	}
	if err := d.checkRecords(ctx); err != nil {
		return nil, err
	}
	if err := d.checkPods(ctx, c); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *PoolDetail) problem(format string, args ...any) {
	d.Problems = append(d.Problems, fmt.Sprintf(format, args...))
}

// checkRecords compares the holder records with the allocations.
func (d *PoolDetail) checkRecords(ctx context.Context) error {
	hl, ok := d.st.(store.HolderLister)
	if !ok {
		return nil
	}
	recs, err := hl.Holders(ctx, d.Space)
	if err != nil {
		return err
	}
	byKey := map[store.Key]store.Allocation{}
	for _, a := range d.spaceAllocs {
		byKey[a.Key()] = a
	}
	pointed := map[store.Key]bool{}
	for _, r := range recs {
		if a, ok := byKey[r.Key]; ok && a.Address == r.Address {
			pointed[r.Key] = true
			continue
		}
		if !d.holds(r.Address) {
			continue
		}
		d.problem("holder record of container %s ifname %s points at %s, which it does not hold", short(r.ContainerID), r.IfName, r.Address)
	}
	for _, a := range d.allocs {
		if !pointed[a.Key()] {
			d.problem("allocation %s of container %s ifname %s has no holder record (its DEL cannot find it)", a.Address, short(a.ContainerID), a.IfName)
		}
	}
	return nil
}

// holds reports whether addr belongs to the pool (the row outside every
// range reports for the whole space).
func (p *IPAMPool) holds(addr netip.Addr) bool {
	if p.Subnet == "" {
		return true
	}
	pfx, err := netip.ParsePrefix(p.Subnet)
	return err == nil && pfx.Contains(addr)
}

// checkPods reports allocations whose pod is gone, recreated or terminal.
func (d *PoolDetail) checkPods(ctx context.Context, c Cluster) error {
	pods := map[string]map[string]*corev1.Pod{}
	for _, a := range d.allocs {
		if a.PodUID == "" || a.Reserved() {
			continue
		}
		if pods[a.PodNamespace] == nil {
			byName := map[string]*corev1.Pod{}
			err := eachPod(ctx, c, a.PodNamespace, metav1.ListOptions{}, func(p *corev1.Pod) error {
				byName[p.Name] = p
				return nil
			})
			if err != nil {
				return err
			}
			pods[a.PodNamespace] = byName
		}
		pod := pods[a.PodNamespace][a.PodName]
		switch {
		case pod == nil:
			d.problem("allocation %s: pod %s/%s no longer exists", a.Address, a.PodNamespace, a.PodName)
		case string(pod.UID) != a.PodUID:
			d.problem("allocation %s: pod %s/%s was recreated (its holder was UID %s)", a.Address, a.PodNamespace, a.PodName, a.PodUID)
		case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
			d.problem("allocation %s: pod %s/%s is %s", a.Address, a.PodNamespace, a.PodName, pod.Status.Phase)
		}
	}
	return nil
}

// short abbreviates a container ID as runtimes do.
func short(id string) string {
	if len(id) > 12 && !strings.Contains(id, "/") {
		return id[:12]
	}
	return id
}

// WritePoolsText writes the pools table.
func WritePoolsText(w io.Writer, pools []*IPAMPool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tPOOL\tSPACE\tRANGES\tSIZE\tUSED\tRESERVED\tFREE")
	for _, p := range pools {
		size, free := "-", "-"
		if p.Size > 0 {
			size = strconv.FormatUint(p.Size, 10)
		}
		if p.Free != nil {
			free = strconv.FormatUint(*p.Free, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", p.Store, p.Name, p.SpaceName, dash(strings.Join(p.Ranges, ",")), size, p.Used, p.Reserved, free)
	}
	return tw.Flush()
}

// WriteText writes the pool's holders and problems; ages are relative
// to now.
func (d *PoolDetail) WriteText(w io.Writer, now time.Time) error {
	fmt.Fprintf(w, "Pool:      %s (space %s: %s)\nStore:     %s\n", d.Name, d.SpaceName, d.Space, d.Store)
	fmt.Fprintf(w, "Ranges:    %s\nNetworks:  %s\n", dash(strings.Join(d.Ranges, ", ")), dash(strings.Join(d.Networks, ", ")))
	fmt.Fprintf(w, "Usage:     %d used, %d reserved", d.Used, d.Reserved)
	if d.Free != nil {
		fmt.Fprintf(w, ", %d free of %d", *d.Free, d.Size)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tPOD\tCONTAINER\tINTERFACE\tNODE\tCLAIM\tAGE")
	for _, h := range d.Holders {
		pod := dash(h.Pod)
		if h.Reserved {
			pod += " (reserved)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Address, pod, short(h.Container), h.Interface, dash(h.Node), dash(h.Claim), age(now.Sub(h.Created)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Problems) == 0 {
		_, err := fmt.Fprintln(w, "Problems:  none")
		return err
	}
	fmt.Fprintln(w, "Problems:")
	for _, p := range d.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	return nil
}

// age formats a duration as kubectl does, roughly.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
