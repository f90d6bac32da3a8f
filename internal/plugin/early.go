package plugin

import (
	"context"
	"strings"

	"github.com/plexus-cni/plexus/internal/attach"
	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/plan"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// early is the cluster network's ADD begun before the pod and its networks
// are read (Plugin.StartClusterEarly), and the record written for it.
type early struct {
	started *attach.Started
	rec     *cache.Record
}

// startCluster begins the cluster network's ADD, when the pod's reads cannot
// change it, so that it runs while they are made. It returns nil, having
// done nothing, unless all of these hold:
//   - StartClusterEarly is set and clusterNetworkFirst is not (that key asks
//     for Multus's order: the pod and its networks read before anything
//     attaches);
//   - the cluster network is a file (clusterNetwork a path, or delegates[0]),
//     so no NAD can stand in its place, and it names no device resource;
//   - its plugins are of the types known to touch only their own interface
//     (attach.OrderReason). A plugin plexus does not know (Calico, Cilium,
//     flannel) may keep state per pod name, which an ADD undone a moment
//     later, for a sandbox the plan refuses (an earlier pod's of that name),
//     could disturb.
//
// The pod's default-network annotation may still replace it: add compares
// the plan's cluster network with this one and abandons this one if they
// differ. As before any delegate, the record (the cluster network alone)
// and the ADD mark are written first.
func (p *Plugin) startCluster(ctx context.Context, r *request, store *cache.Store) (*early, error) {
	if !p.StartClusterEarly || r.conf.ClusterNetworkFirst {
		return nil, nil
	}
	d := localClusterNetwork(ctx, r)
	if d == nil || d.ResourceName != "" {
		return nil, nil
	}
	atts := []plan.Attachment{plan.ClusterNetwork(plan.Input{IfName: r.args.IfName, Cluster: d, RuntimeConfig: r.conf.RuntimeConfig})}
	plan.SetDeviceInfoFiles(atts, r.conf.DeviceInfoDir, r.args.ContainerID)
	run, rec, err := prepare(r, atts)
	if err != nil {
		return nil, nil // the plan reports it
	}
	if reason := attach.OrderReason(run, 0); reason != "" {
		r.log.Debugf("cluster network %s starts after the pod is read: %s", run[0].Name, reason)
		return nil, nil
	}
	if err := store.Save(rec); err != nil {
		return nil, cnierr.Wrap(cnierr.IOFailure, err)
	}
	if err := store.MarkAdding(r.args.ContainerID); err != nil {
		forgetAfterRollback(r, store, rec, err)
		return nil, cnierr.Wrap(cnierr.IOFailure, err)
	}
	return &early{started: r.runner().Start(ctx, r.sandbox(), run[0]), rec: rec}, nil
}

// localClusterNetwork returns the cluster network when it is a file, read
// without the API; nil otherwise or when it cannot be read (the plan then
// reports why).
func localClusterNetwork(ctx context.Context, r *request) *nad.Delegate {
	c := r.conf
	switch {
	case strings.Contains(c.ClusterNetwork, "/"):
		d, err := plan.ResolveRef(ctx, "clusterNetwork", c.ClusterNetwork, c.MultusNamespace, c.ConfDir, nil)
		if err != nil {
			return nil
		}
		return d
	case c.ClusterNetwork == "" && len(c.Delegates) > 0:
		d, err := nad.Parse(c.Delegates[0], "")
		if err != nil {
			return nil
		}
		return d
	}
	return nil
}

// abandon ends an early ADD the pod's ADD cannot use: cause (nil when the
// plan attaches another cluster network) failed the ADD. It returns cause
// joined with the rollback's failure; the early record stays only if the
// rollback failed, for the runtime's DEL.
func (e *early) abandon(ctx context.Context, r *request, store *cache.Store, cause error) error {
	err := r.runner().Abandon(ctx, r.sandbox(), e.started, cause)
	if err != nil {
		forgetAfterRollback(r, store, e.rec, err)
	}
	return err
}
