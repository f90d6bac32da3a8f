package plugin

import (
	"context"
	"errors"

	"github.com/plexus-cni/plexus/internal/attach"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/podnet"
)

// check implements CNI CHECK: every recorded attachment's interface must
// exist in the pod, and every delegate that supports CHECK must pass it.
func (p *Plugin) check(ctx context.Context, r *request) error {
	rec, err := r.store().Load(r.args.ContainerID)
	if err != nil {
		return cnierr.Wrap(cnierr.IOFailure, err)
	}
	if rec == nil {
		return cnierr.New(cnierr.UnknownContainer, "no attachments are recorded for container %s", r.args.ContainerID)
	}
	run, err := fromRecord(rec)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range run {
		if err := podnet.LinkExists(r.args.Netns, a.IfName); err != nil {
			errs = append(errs, &attach.Error{Op: "check", Attachment: a.Name, IfName: a.IfName, Err: err})
		}
	}
	if len(errs) > 0 {
		// Missing interfaces make the delegates' own CHECK noise; report them.
		return cnierr.Wrap(cnierr.Internal, errors.Join(errs...))
	}
	sb := r.sandbox()
	sb.Args = rec.Args
	return r.runner().Check(ctx, sb, run)
}
