package plugin

import (
	"context"
	"errors"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// takeOver gives slot i of the attachment the reservation its pod name
// left in rg's space (sticky networks), or its claim's (claim.go): found
// reports whether it did. A reservation of another address than the
// requested one is left alone.
func (r *request) takeOver(ctx context.Context, i int, rg *alloc.Range, h store.Holder) (store.Allocation, bool, error) {
	pod := r.conf.Pod
	if !r.sticky() || pod.PodName == "" || pod.PodNamespace == "" {
		return store.Allocation{}, false, nil
	}
	rk := store.ReservationKey(r.conf.Space(rg), pod.PodNamespace, pod.PodName, r.args.IfName, i)
	if r.conf.Claim != "" {
		rk = store.ClaimReservationKey(r.conf.Space(rg), pod.PodNamespace, r.conf.Claim, r.args.IfName, i)
	}
	res, err := r.st.Lookup(ctx, rk)
	if errors.Is(err, store.ErrNotFound) {
		if r.conf.Claim != "" && r.conf.Slots[i].Want.IsValid() {
			return r.takeOverClaimed(ctx, i, rg, h)
		}
		return store.Allocation{}, false, nil
	}
	if err != nil {
		return store.Allocation{}, false, err
	}
	if want := r.conf.Slots[i].Want; want.IsValid() && want != res.Address {
		return store.Allocation{}, false, nil
	}
	a, err := r.st.Transfer(ctx, rk, h)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInUse) {
		// Taken over concurrently, or this attachment already holds an
		// address (a repeated ADD): allocate as usual.
		return store.Allocation{}, false, nil
	}
	if err != nil {
		return store.Allocation{}, false, err
	}
	r.log.Infof("ADD %s/%s: took over the reservation of %s/%s: %s", r.args.ContainerID, r.args.IfName, pod.PodNamespace, pod.PodName, a.Address)
	return a, true, nil
}

// releaseOrReserve frees what k holds, or, on a sticky network, turns it
// into the reservation of its pod's namespace and name. A newer address
// replaces an older reservation of the same pod name and interface.
func (p *Plugin) releaseOrReserve(ctx context.Context, r *request, k store.Key) error {
	if !r.sticky() {
		return r.st.Release(ctx, k)
	}
	a, err := r.st.Lookup(ctx, k)
	if errors.Is(err, store.ErrNotFound) || err == nil && a.PodName == "" {
		return r.st.Release(ctx, k)
	}
	if err != nil {
		return err
	}
	return store.Reserve(ctx, r.st, a, p.Now().UTC())
}

// sticky reports whether the request's addresses outlive its pod: a
// sticky network's (for the pod's name) or a claim's (for the claim).
func (r *request) sticky() bool { return r.conf.Sticky || r.conf.Claim != "" }
