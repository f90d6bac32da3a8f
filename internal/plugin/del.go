package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"

	"github.com/plexus-cni/plexus/internal/attach"
	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/delegexec"
	"github.com/plexus-cni/plexus/internal/plan"
)

// del implements CNI DEL. With a cache record it tears down exactly what ADD
// recorded, whatever the API server, the pod or the NADs say now. Without
// one it tears down what the configuration and the API still describe, which
// is idempotent. A corrupt record is moved aside and reported.
func (p *Plugin) del(ctx context.Context, r *request) error {
	store := r.store()
	if store.Adding(r.args.ContainerID) {
		// This process holds the sandbox's lock: the ADD that left the
		// mark had its runner killed, and may have left an IPAM plugin
		// running that would take an address after this DEL.
		n, err := delegexec.Reap(r.args.ContainerID)
		if err != nil {
			return cnierr.Wrap(cnierr.TryAgainLater, err)
		}
		r.log.Infof("DEL after an interrupted ADD: stopped %d processes it left running", n)
	}
	rec, err := store.Load(r.args.ContainerID)
	if errors.Is(err, cache.ErrCorrupt) {
		return p.delCorrupt(ctx, r, store, err)
	}
	if err != nil {
		return cnierr.Wrap(cnierr.IOFailure, err)
	}
	if rec == nil {
		return p.delDerived(ctx, r)
	}
	run, err := fromRecord(rec)
	if err != nil {
		return err
	}
	sb := r.sandbox()
	sb.Args = rec.Args
	if err := r.runner().Del(ctx, sb, run); err != nil {
		return err // the record stays: the next DEL retries every attachment
	}
	if err := removeDeviceInfo(rec.DeviceInfoFiles()); err != nil {
		return cnierr.Wrap(cnierr.IOFailure, err)
	}
	if err := store.Remove(r.args.ContainerID); err != nil {
		return cnierr.Wrap(cnierr.IOFailure, err)
	}
	return cnierr.Wrap(cnierr.IOFailure, store.Unlink(r.args.ContainerID))
}

// delCorrupt moves the unreadable record aside, tears down what can still be
// derived, and fails this DEL so the corruption is seen; the runtime's next
// DEL finds no record and succeeds.
func (p *Plugin) delCorrupt(ctx context.Context, r *request, store *cache.Store, cause error) error {
	moved, err := store.Quarantine(r.args.ContainerID)
	if err != nil {
		return cnierr.Wrap(cnierr.IOFailure, errors.Join(cause, err))
	}
	derr := p.delDerived(ctx, r)
	return cnierr.Wrap(cnierr.DecodingFailure, errors.Join(
		fmt.Errorf("%w (moved to %s; tore down what the configuration and the API describe)", cause, moved), derr))
}

// delDerived tears down the attachments re-derived from the configuration
// and, when reachable, the pod's annotations. Networks that can no longer be
// resolved are skipped: nothing recorded says they were ever attached.
func (p *Plugin) delDerived(ctx context.Context, r *request) error {
	api, pod, err := p.lookupPod(ctx, r)
	if err != nil {
		r.log.Infof("DEL without cache: pod not available (%v); tearing down the configured networks only", err)
		api, pod = nil, nil
	}
	atts, err := p.plan(ctx, r, api, pod)
	if err != nil && pod != nil {
		r.log.Infof("DEL without cache: cannot plan the pod's networks (%v); tearing down the configured networks only", err)
		atts, err = p.plan(ctx, r, nil, nil)
	}
	if err != nil {
		return err
	}
	if err := p.assignDevices(ctx, r, api, pod, atts); err != nil {
		// Tear down without devices; the device-info files are still named.
		r.log.Infof("DEL without cache: %v", err)
		plan.SetDeviceInfoFiles(atts, r.conf.DeviceInfoDir, r.args.ContainerID)
	}
	run, rec, err := prepare(r, atts)
	if err != nil {
		return err
	}
	if err := r.runner().Del(ctx, r.sandbox(), run); err != nil {
		return err
	}
	if err := removeDeviceInfo(rec.DeviceInfoFiles()); err != nil {
		return cnierr.Wrap(cnierr.IOFailure, err)
	}
	return cnierr.Wrap(cnierr.IOFailure, r.store().Unlink(r.args.ContainerID))
}

func fromRecord(rec *cache.Record) ([]attach.Attachment, error) {
	run := make([]attach.Attachment, len(rec.Attachments))
	for i, a := range rec.Attachments {
		list, err := libcni.ConfListFromBytes(a.Conflist)
		if err != nil {
			return nil, cnierr.Wrap(cnierr.DecodingFailure, fmt.Errorf("attachment cache for %s, %s: %w", rec.ContainerID, a.IfName, err))
		}
		run[i] = attach.Attachment{Name: a.StatusName, IfName: a.IfName, List: list, CapabilityArgs: a.CapabilityArgs}
	}
	return run, nil
}
