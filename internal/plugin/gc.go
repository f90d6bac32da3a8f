package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/attach"
	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/delegexec"
)

// status implements CNI STATUS: plexus can serve ADDs when the readiness
// indicator file exists and the cluster network's delegates report ready.
func (p *Plugin) status(ctx context.Context, r *request) error {
	if f := r.conf.ReadinessIndicatorFile; f != "" {
		if err := waitReadiness(ctx, f, 0); err != nil {
			return cnierr.New(cnierr.PluginNotAvailable, "readinessindicatorfile %s does not exist: the cluster network is not ready", f)
		}
	}
	cluster, _, err := configuredNetworks(ctx, r, nil)
	if err != nil {
		return cnierr.Wrap(cnierr.PluginNotAvailable, err)
	}
	list, err := libcni.ConfListFromBytes(cluster.Conflist)
	if err != nil {
		return cnierr.Wrap(cnierr.PluginNotAvailable, err)
	}
	if err := r.cni.GetStatusNetworkList(ctx, list); err != nil {
		return cnierr.Wrap(cnierr.PluginNotAvailable, fmt.Errorf("cluster network %s: %w", cluster.Name, err))
	}
	return nil
}

// gc implements CNI GC: every recorded sandbox missing from the runtime's
// valid attachments is torn down and forgotten, then GC is forwarded to the
// cluster network and to each secondary network still in use, with exactly
// the attachments plexus recorded for it.
func (p *Plugin) gc(ctx context.Context, r *request) error {
	valid := map[string]bool{}
	for _, a := range r.conf.ValidAttachments {
		valid[a.ContainerID] = true
	}
	cluster, _, err := configuredNetworks(ctx, r, nil)
	if err != nil {
		return err
	}
	clusterList, err := libcni.ConfListFromBytes(cluster.Conflist)
	if err != nil {
		return cnierr.Wrap(cnierr.InvalidNetConfig, err)
	}
	inUse := map[string]*networkGC{clusterList.Name: {list: clusterList, valid: r.conf.ValidAttachments}}
	errs, complete := p.gcRecords(ctx, r, valid, inUse)
	if !complete {
		// A live sandbox's record could not be read: forwarding GC could
		// tear down its attachments, so only the cluster network's own list
		// (the runtime's) is trusted this time.
		inUse = map[string]*networkGC{clusterList.Name: inUse[clusterList.Name]}
	}
	for name, g := range inUse {
		if err := r.cni.GCNetworkList(ctx, g.list, &libcni.GCArgs{ValidAttachments: g.valid}); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// gcRecords tears down and forgets recorded sandboxes the runtime no longer
// lists, and adds the recorded attachments of the others to inUse. complete
// is false when a live sandbox's record could not be read.
func (p *Plugin) gcRecords(ctx context.Context, r *request, valid map[string]bool, inUse map[string]*networkGC) (errs []error, complete bool) {
	store := r.store()
	ids, err := store.List()
	if err != nil {
		return []error{cnierr.Wrap(cnierr.IOFailure, err)}, false
	}
	complete = true
	for _, id := range ids {
		rec, err := store.Load(id)
		var run []attach.Attachment
		if err == nil && rec != nil {
			run, err = fromRecord(rec)
		}
		if err != nil || rec == nil {
			errs = append(errs, err)
			complete = complete && !valid[id]
			continue
		}
		if !valid[id] {
			errs = append(errs, p.gcSandbox(ctx, r, store, rec, run))
			continue
		}
		for _, a := range run {
			g := inUse[a.List.Name]
			if g == nil {
				g = &networkGC{list: a.List}
				inUse[a.List.Name] = g
			}
			g.valid = append(g.valid, types.GCAttachment{ContainerID: id, IfName: a.IfName})
		}
	}
	return errs, complete
}

type networkGC struct {
	list  *libcni.NetworkConfigList
	valid []types.GCAttachment
}

// gcSandbox tears down and forgets a recorded sandbox the runtime no longer
// lists, in its turn, as a DEL would.
func (p *Plugin) gcSandbox(ctx context.Context, r *request, store *cache.Store, rec *cache.Record, run []attach.Attachment) error {
	id := rec.ContainerID
	unlock, err := store.Lock(ctx, id)
	if err != nil {
		return cnierr.Wrap(cnierr.TryAgainLater, err)
	}
	defer unlock()
	if store.Adding(id) {
		if _, err := delegexec.Reap(id); err != nil {
			return cnierr.Wrap(cnierr.TryAgainLater, err)
		}
	}
	sb := attach.Sandbox{ContainerID: id, NetNS: rec.NetNS, Args: rec.Args}
	if err := r.runner().Del(ctx, sb, run); err != nil {
		return err
	}
	return errors.Join(removeDeviceInfo(rec.DeviceInfoFiles()), store.Remove(id), store.Unlink(id))
}
