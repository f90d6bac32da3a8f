package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// add gets one address per slot, the same ones again for a repeated ADD.
// When a slot fails, or ctx ends, it releases every key it tried, with a
// context of its own: a cancelled request leaves nothing allocated.
func (p *Plugin) add(ctx context.Context, r *request) (types.Result, error) {
	args := r.args
	claim, err := r.resolveClaim(ctx)
	if err != nil {
		r.log.Errorf("ADD %s/%s: %v", args.ContainerID, args.IfName, err)
		return nil, err
	}
	var got []store.Allocation
	var ranges []*alloc.Range
	for i := range r.conf.Slots {
		a, rg, err := p.allocSlot(ctx, r, i)
		if err != nil {
			r.log.Errorf("ADD %s/%s slot %d: %v", args.ContainerID, args.IfName, i, err)
			r.undo(ctx, i)
			return nil, err
		}
		got, ranges = append(got, a), append(ranges, rg)
		r.log.Infof("ADD %s/%s: %s in %q (pod %s/%s, node %s)", args.ContainerID, args.IfName, a.Address, a.Space, a.PodNamespace, a.PodName, a.Node)
	}
	if err := r.recordClaim(ctx, claim, got); err != nil {
		r.log.Errorf("ADD %s/%s: %v", args.ContainerID, args.IfName, err)
		r.undo(ctx, len(r.conf.Slots)-1)
		return nil, err
	}
	return r.result(got, ranges), nil
}

// undoTimeout bounds undoing a failed ADD, which outlives the request's
// context (that may be why it failed).
const undoTimeout = 30 * time.Second

// undo releases the keys of slots 0 to failed (every range of each: a
// store call that failed may have allocated in it all the same).
func (r *request) undo(ctx context.Context, failed int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	seen := map[store.Key]bool{}
	for i := 0; i <= failed; i++ {
		for _, rg := range r.conf.Slots[i].Ranges {
			k := r.key(i, rg)
			if seen[k] {
				continue
			}
			seen[k] = true
			if err := r.st.Release(ctx, k); err != nil {
				r.log.Errorf("ADD %s/%s: undoing slot %d: %v", r.args.ContainerID, r.args.IfName, i, err)
			}
		}
	}
}

// allocSlot gets slot i's address: the requested one from the range that
// holds it, else the first range with a free address (after looking for
// one already held, so that a repeated ADD keeps its address).
func (p *Plugin) allocSlot(ctx context.Context, r *request, i int) (store.Allocation, *alloc.Range, error) {
	slot := r.conf.Slots[i]
	h := store.Holder{ContainerID: r.args.ContainerID, IfName: r.args.IfName, Network: r.conf.Name,
		PodNamespace: r.conf.Pod.PodNamespace, PodName: r.conf.Pod.PodName, PodUID: r.conf.Pod.PodUID, Node: r.node, Created: p.Now().UTC(), Sticky: r.conf.Sticky || r.conf.Claim != "", Claim: r.conf.Claim}
	for _, rg := range slot.Ranges {
		if slot.Want.IsValid() && !rg.Subnet.Contains(slot.Want) {
			continue
		}
		if a, ok, err := r.takeOver(ctx, i, rg, h); ok || err != nil {
			return a, rg, storeError(err)
		}
	}
	if len(slot.Ranges) > 1 && !slot.Want.IsValid() {
		for _, rg := range slot.Ranges {
			if a, err := r.st.Lookup(ctx, r.key(i, rg)); err == nil {
				return a, rg, nil
			}
		}
	}
	var last error
	for _, rg := range slot.Ranges {
		if slot.Want.IsValid() && !rg.Subnet.Contains(slot.Want) {
			continue
		}
		a, err := r.st.Allocate(ctx, store.Request{Space: r.conf.Space(rg), Slot: i, Range: rg, Want: slot.Want, Holder: h})
		if err == nil {
			return a, rg, nil
		}
		if last = err; !errors.Is(err, store.ErrExhausted) {
			break
		}
	}
	return store.Allocation{}, nil, storeError(last)
}

func (r *request) key(slot int, rg *alloc.Range) store.Key {
	return store.Key{Space: r.conf.Space(rg), ContainerID: r.args.ContainerID, IfName: r.args.IfName, Slot: slot}
}

// result builds the IPAM result: each address with its range's prefix and
// the gateway of its family, the routes and the DNS settings.
func (r *request) result(got []store.Allocation, ranges []*alloc.Range) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: r.conf.Routes, DNS: r.conf.DNS}
	for i, a := range got {
		ip := &current.IPConfig{Address: *netipToIPNet(ranges[i].Prefix(a.Address))}
		if gw := ranges[i].Gateway; gw.IsValid() && gw.BitLen() == a.Address.BitLen() {
			ip.Gateway = gw.AsSlice()
		}
		res.IPs = append(res.IPs, ip)
	}
	return res
}

func (p *Plugin) del(ctx context.Context, r *request) error {
	args := r.args
	var errs []error
	seen := map[store.Key]bool{}
	for i, slot := range r.conf.Slots {
		for _, rg := range slot.Ranges {
			k := r.key(i, rg)
			if seen[k] {
				continue
			}
			seen[k] = true
			if err := p.releaseOrReserve(ctx, r, k); err != nil {
				errs = append(errs, fmt.Errorf("slot %d: %w", i, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.log.Errorf("DEL %s/%s: %v", args.ContainerID, args.IfName, err)
		return storeError(err)
	}
	r.log.Infof("DEL %s/%s: released", args.ContainerID, args.IfName)
	return nil
}

func (p *Plugin) check(ctx context.Context, r *request) error {
	args := r.args
	prev, err := prevAddresses(args.StdinData)
	if err != nil {
		return withCode(types.ErrInvalidNetworkConfig, err)
	}
	for i, slot := range r.conf.Slots {
		var found *store.Allocation
		for _, rg := range slot.Ranges {
			if a, err := r.st.Lookup(ctx, r.key(i, rg)); err == nil {
				found = &a
				break
			} else if !errors.Is(err, store.ErrNotFound) {
				return storeError(err)
			}
		}
		if found == nil {
			return newError(types.ErrInternal, "CHECK: container %s ifname %s: slot %d holds no address", args.ContainerID, args.IfName, i)
		}
		if prev != nil && !prev[found.Address] {
			return newError(types.ErrInternal, "CHECK: container %s ifname %s: allocated %s is not in prevResult", args.ContainerID, args.IfName, found.Address)
		}
	}
	return nil
}

func (p *Plugin) gc(ctx context.Context, r *request) error {
	valid := map[[2]string]bool{}
	for _, v := range r.conf.ValidAttachments {
		valid[[2]string{v.ContainerID, v.IfName}] = true
	}
	var errs []error
	freed := 0
	for _, space := range r.spaces() {
		allocs, err := r.st.List(ctx, store.Filter{Space: space, Network: r.conf.Name, Node: r.node})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range allocs {
			if valid[[2]string{a.ContainerID, a.IfName}] {
				continue
			}
			if err := p.gcOne(ctx, r, a); err != nil {
				errs = append(errs, fmt.Errorf("freeing %s: %w", a.Address, err))
				continue
			}
			freed++
			r.log.Infof("GC: freed %s of %s/%s", a.Address, a.ContainerID, a.IfName)
		}
	}
	r.log.Infof("GC of %q on %s: freed %d", r.conf.Name, r.node, freed)
	if err := errors.Join(errs...); err != nil {
		r.log.Errorf("GC: %v", err)
		return storeError(err)
	}
	return nil
}

// gcOne frees a, or reserves it for its pod name on a sticky network
// (for its claim when it has one).
func (p *Plugin) gcOne(ctx context.Context, r *request, a store.Allocation) error {
	if (r.conf.Sticky || a.Claim != "") && a.PodName != "" {
		return store.Reserve(ctx, r.st, a, p.Now().UTC())
	}
	return r.st.FreeHeld(ctx, a)
}

// spaces lists the address spaces of the configuration once each.
func (r *request) spaces() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.conf.Slots {
		for _, rg := range s.Ranges {
			if sp := r.conf.Space(rg); !seen[sp] {
				seen[sp] = true
				out = append(out, sp)
			}
		}
	}
	return out
}

// prevAddresses returns the addresses of the prevResult (nil without one).
func prevAddresses(stdin []byte) (map[netip.Addr]bool, error) {
	var nc types.NetConf
	if err := jsonUnmarshal(stdin, &nc); err != nil || nc.RawPrevResult == nil {
		return nil, err
	}
	res, err := parsePrevResult(&nc)
	if err != nil {
		return nil, fmt.Errorf("prevResult: %w", err)
	}
	out := map[netip.Addr]bool{}
	for _, ip := range res.IPs {
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok {
			out[a.Unmap()] = true
		}
	}
	return out, nil
}
