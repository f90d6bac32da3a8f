package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// IPAMClaims (NPWG v1.3). An attachment whose network selection names a
// claim (plexus passes it as args.cni "ipam-claim-reference") takes its
// addresses from the claim:
//   - the claim must be in the pod's namespace and be for this network and
//     interface, else the ADD fails naming both;
//   - when the claim has status.ips, those addresses are the attachment's:
//     from the claim's reservation (no pod holds them), or from the pod
//     that holds them for the same claim (a VM's pod replaced or migrated:
//     the new pod takes them over, the old one's DEL then frees nothing),
//     never from a holder that does not name the claim;
//   - otherwise addresses are allocated as usual and written to
//     status.ips.
// The addresses are never freed while the claim exists: DEL (and the
// controller, for a pod that is gone) turns them into the claim's
// reservation; plexus-controller frees them once the claim is deleted.

const claimField = "args.cni.ipam-claim-reference"

// resolveClaim reads and checks the claim the request names (nil when it
// names none) and sets each slot's wanted address to the claim's.
func (r *request) resolveClaim(ctx context.Context) (*store.Claim, error) {
	name := r.conf.Claim
	if name == "" {
		return nil, nil
	}
	ns := r.conf.Pod.PodNamespace
	if ns == "" {
		return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New(claimField, name, "needs the pod's namespace (CNI_ARGS K8S_POD_NAMESPACE)"))
	}
	cl, ok := store.ClaimsOf(r.st)
	if !ok {
		return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New(claimField, name,
			"IPAMClaims live in the Kubernetes API: this network's store (etcd) cannot resolve them"))
	}
	c, err := cl.GetClaim(ctx, ns, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New(claimField, name, "IPAMClaim %s/%s not found", ns, name))
	}
	if err != nil {
		return nil, storeError(err)
	}
	if c.Network != r.conf.Name || c.Interface != r.args.IfName {
		return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New(claimField, name,
			"IPAMClaim %s/%s is for network %q interface %q, not this attachment's network %q interface %q",
			ns, name, c.Network, c.Interface, r.conf.Name, r.args.IfName))
	}
	if len(c.IPs) == 0 {
		return c, nil
	}
	if len(c.IPs) != len(r.conf.Slots) {
		return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New(claimField, name,
			"IPAMClaim %s/%s holds %d addresses %v; this network gives %d", ns, name, len(c.IPs), c.IPs, len(r.conf.Slots)))
	}
	for i, s := range c.IPs {
		a, err := parseClaimIP(s)
		if err != nil {
			return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New(claimField, name, "IPAMClaim %s/%s status.ips[%d] %q: %v", ns, name, i, s, err))
		}
		if w := r.conf.Slots[i].Want; w.IsValid() && w != a {
			return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New(claimField, name,
				"IPAMClaim %s/%s holds %s, the request asks for %s", ns, name, a, w))
		}
		r.conf.Slots[i].Want = a
	}
	return c, nil
}

// parseClaimIP reads an address of status.ips, with or without a prefix.
func parseClaimIP(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), nil
	}
	return netip.ParseAddr(s)
}

// recordClaim writes the addresses of a claim that had none.
func (r *request) recordClaim(ctx context.Context, c *store.Claim, got []store.Allocation) error {
	if c == nil || len(c.IPs) > 0 {
		return nil
	}
	cl, _ := store.ClaimsOf(r.st)
	ips := make([]string, len(got))
	for i, a := range got {
		ips[i] = a.Address.String()
	}
	if err := cl.SetClaimIPs(ctx, c.Namespace, c.Name, ips); err != nil {
		return storeError(err)
	}
	r.log.Infof("ADD %s/%s: IPAMClaim %s/%s holds %v", r.args.ContainerID, r.args.IfName, c.Namespace, c.Name, ips)
	return nil
}

// takeOverClaimed hands slot i the claim's address held by another pod of
// the same claim (the old pod of a migrating VM); an address of the claim
// held by anyone else is an error.
func (r *request) takeOverClaimed(ctx context.Context, i int, rg *alloc.Range, h store.Holder) (store.Allocation, bool, error) {
	want := r.conf.Slots[i].Want
	space := r.conf.Space(rg)
	all, err := r.st.List(ctx, store.Filter{Space: space})
	if err != nil {
		return store.Allocation{}, false, err
	}
	for _, a := range all {
		if a.Address != want || a.Owns(r.key(i, rg)) {
			continue
		}
		if a.Claim != r.conf.Claim || a.PodNamespace != r.conf.Pod.PodNamespace {
			return store.Allocation{}, false, withCode(types.ErrTryAgainLater, fmt.Errorf("%s %q: the claim's address %s is held by %s/%s (container %s), which does not name the claim",
				claimField, r.conf.Claim, want, a.PodNamespace, a.PodName, a.ContainerID))
		}
		got, err := r.st.Transfer(ctx, a.Key(), h)
		if err != nil {
			return store.Allocation{}, false, err
		}
		r.log.Infof("ADD %s/%s: took %s of IPAMClaim %s over from pod %s/%s (container %s)", r.args.ContainerID, r.args.IfName,
			want, r.conf.Claim, a.PodNamespace, a.PodName, a.ContainerID)
		return got, true, nil
	}
	return store.Allocation{}, false, nil
}
