package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/attach"
	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/delegexec"
	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/internal/plan"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// ErrRecordPredatesHotplug: the sandbox was added by a plexus without
// hot-plug, whose record lacks what a hot-plug needs.
var ErrRecordPredatesHotplug = errors.New("its record was written by a plexus without hot-plug; recreate the pod to change its networks")

// Replugged says what a hot-plug did: the interfaces it attached and
// removed ("net2 (ns/name)").
type Replugged struct {
	Added, Removed []string
}

// Replug brings the sandbox of a running pod in line with the pod's
// networks annotation (hot-plug): entries that appeared are attached into
// its network namespace, entries that went are deleted, the others are not
// touched (plan.Replan's identity rule). cniDir is plexus's state directory.
//
// It is an ADD and a DEL in the sandbox's turn (cache.Store.Lock), which
// the runtime's DEL of the sandbox cancels. As at sandbox creation the
// plan is validated whole (namespace isolation, capabilities, the NADs),
// the delegates get the sandbox's CNI_ARGS (plexus-ipam ties addresses to
// the pod's UID), and the record is written before any delegate runs, the
// new attachments marked pending. A failed attachment is rolled back
// alone; the pod keeps what it had. A pod with no sandbox on this node,
// or whose ADD has not finished, is left alone (nil, nil).
func (p *Plugin) Replug(ctx context.Context, cniDir string, pod *corev1.Pod) (*Replugged, error) {
	store := cache.New(filepath.Join(cniDir, "attachments"))
	id, err := sandboxOf(store, pod)
	if err != nil || id == "" {
		return nil, err
	}
	unlock, err := store.Lock(ctx, id)
	if err != nil {
		return nil, cnierr.Wrap(cnierr.TryAgainLater, err)
	}
	defer unlock()
	ctx, done := p.ops.start(ctx, id)
	defer done()
	rec, err := store.Load(id)
	if err != nil || rec == nil || rec.PodUID != string(pod.UID) {
		return nil, err // deleted meanwhile, or a corrupt record DEL deals with
	}
	if len(rec.Config) == 0 {
		return nil, fmt.Errorf("sandbox %s: %w", id, ErrRecordPredatesHotplug)
	}
	r, err := p.load(&skel.CmdArgs{ContainerID: id, Netns: rec.NetNS, IfName: rec.IfName, Path: rec.CNIPath,
		Args: encodeCNIArgs(rec.Args), StdinData: rec.Config})
	if err != nil {
		return nil, err
	}
	defer r.log.Close()
	if adding := store.Adding(id); adding || hasPending(rec) {
		if rec, err = p.resume(ctx, r, store, rec, adding); err != nil {
			return nil, err
		}
	}
	out, err := p.replug(ctx, r, store, rec, pod)
	if err != nil {
		r.log.Errorf("hot-plug failed: %v", err)
	} else if out != nil {
		r.log.Infof("hot-plug done: added %v, removed %v", out.Added, out.Removed)
	}
	return out, err
}

// resume finishes a hot-plug that did not finish: its runner died (the
// mark stays: what it left running is stopped first) or its rollback
// failed. Its pending attachments are deleted and dropped from the record.
// A mark without pending attachments (a sandbox ADD's whose runner died:
// the runtime deletes that sandbox) is only cleared.
func (p *Plugin) resume(ctx context.Context, r *request, store *cache.Store, rec *cache.Record, adding bool) (*cache.Record, error) {
	id := rec.ContainerID
	if adding {
		if _, err := delegexec.Reap(id); err != nil {
			return nil, cnierr.Wrap(cnierr.TryAgainLater, err)
		}
	}
	var pending []cache.Attachment
	kept := *rec
	kept.Attachments = nil
	for _, a := range rec.Attachments {
		if a.Pending {
			pending = append(pending, a)
		} else {
			kept.Attachments = append(kept.Attachments, a)
		}
	}
	if len(pending) > 0 {
		run, err := fromRecord(&cache.Record{ContainerID: id, Attachments: pending})
		if err != nil {
			return nil, err
		}
		if err := r.runner().Del(ctx, r.sandbox(), run); err != nil {
			return nil, fmt.Errorf("deleting what an unfinished hot-plug attached: %w", err)
		}
		r.log.Infof("hot-plug resumed: deleted %d attachments an unfinished one left pending", len(pending))
		if err := store.Save(&kept); err != nil {
			return nil, cnierr.Wrap(cnierr.IOFailure, err)
		}
	}
	if err := store.Added(id); err != nil {
		return nil, cnierr.Wrap(cnierr.IOFailure, err)
	}
	return &kept, nil
}

func hasPending(rec *cache.Record) bool {
	return slices.ContainsFunc(rec.Attachments, func(a cache.Attachment) bool { return a.Pending })
}

func (p *Plugin) replug(ctx context.Context, r *request, store *cache.Store, rec *cache.Record, pod *corev1.Pod) (*Replugged, error) {
	var api API
	if p.NewAPI != nil {
		var err error
		if api, err = p.NewAPI(r.conf, rec.PodUID); err != nil {
			return nil, cnierr.Wrap(cnierr.InvalidNetConfig, err)
		}
	}
	if api == nil {
		return nil, cnierr.New(cnierr.InvalidNetConfig, "hot-plug needs the Kubernetes API: the configuration has no kubeconfig")
	}
	pl, err := p.planReplug(ctx, r, api, rec, pod)
	if err != nil || pl == nil {
		return nil, err
	}
	return p.applyReplug(ctx, r, store, rec, api, pod, pl)
}

// replugPlan is what a hot-plug does to a sandbox's record.
type replugPlan struct {
	added      []plan.Attachment   // the new attachments, named
	addRun     []attach.Attachment // their delegates
	addRec     []cache.Attachment  // their records
	removed    []cache.Attachment
	removedRun []attach.Attachment
	// done and failed are the record's attachments once the additions
	// succeeded or failed: the configured networks, then the entries'
	// attachments in the annotation's order.
	done, failed []cache.Attachment
}

// planReplug plans the pod's whole annotation as an ADD would (every check
// of sandbox creation applies) and compares it with the record
// (plan.Replan); nil when nothing changes.
func (p *Plugin) planReplug(ctx context.Context, r *request, api API, rec *cache.Record, pod *corev1.Pod) (*replugPlan, error) {
	atts, err := p.plan(ctx, r, api, pod)
	if err != nil {
		return nil, err
	}
	var wanted []*plan.Attachment
	var wsel []*netselect.Selection
	for i := range atts {
		if atts[i].Selection != nil {
			wanted = append(wanted, &atts[i])
			wsel = append(wsel, atts[i].Selection)
		}
	}
	var recorded []plan.Recorded
	var recIdx []int // recorded[i] is rec.Attachments[recIdx[i]]
	var reserved []string
	pl := &replugPlan{}
	for i, a := range rec.Attachments {
		if a.Selection == "" {
			reserved = append(reserved, a.IfName)
			pl.done, pl.failed = append(pl.done, a), append(pl.failed, a)
			continue
		}
		recorded = append(recorded, plan.Recorded{Key: a.Selection, IfName: a.IfName})
		recIdx = append(recIdx, i)
	}
	change, err := plan.Replan(recorded, wsel, reserved)
	if err != nil || change.Empty() {
		return nil, err
	}
	for _, w := range change.Added {
		a := *wanted[w]
		a.IfName = change.IfNames[w]
		field := fmt.Sprintf("networks[%d]", w)
		if a.Delegate.ResourceName != "" {
			return nil, cnierr.New(cnierr.InvalidNetConfig, "%s: network %s needs a device (resourceName %q): devices are given at pod creation only, not hot-plugged",
				field, a.StatusName, a.Delegate.ResourceName)
		}
		if a.DefaultRoute != nil {
			return nil, cnierr.New(cnierr.InvalidNetConfig, "%s.default-route: network %s: the default route of a running pod is not moved; set it at pod creation",
				field, a.StatusName)
		}
		pl.added = append(pl.added, a)
	}
	run, addRec, err := prepare(r, pl.added)
	if err != nil {
		return nil, err
	}
	pl.addRun, pl.addRec = run, addRec.Attachments
	for _, ri := range change.Removed {
		pl.removed = append(pl.removed, rec.Attachments[recIdx[ri]])
	}
	if pl.removedRun, err = fromRecord(&cache.Record{ContainerID: rec.ContainerID, Attachments: pl.removed}); err != nil && len(pl.removed) > 0 {
		return nil, err
	}
	addedAt := map[int]int{} // wanted index → index in added
	for j, w := range change.Added {
		addedAt[w] = j
	}
	for w := range wanted {
		if ri, ok := change.Kept[w]; ok {
			kept := rec.Attachments[recIdx[ri]]
			pl.done, pl.failed = append(pl.done, kept), append(pl.failed, kept)
		} else {
			pl.done = append(pl.done, pl.addRec[addedAt[w]])
		}
	}
	return pl, nil
}

// applyReplug carries pl out: the record first (the additions pending),
// removals, then additions (which roll back alone on failure), the final
// record, network-status and events.
func (p *Plugin) applyReplug(ctx context.Context, r *request, store *cache.Store, rec *cache.Record, api API, pod *corev1.Pod, pl *replugPlan) (*Replugged, error) {
	id := rec.ContainerID
	statuses := currentStatus(rec, pod)
	withPending := *rec
	withPending.Attachments = slices.Clone(rec.Attachments)
	for _, a := range pl.addRec {
		a.Pending = true
		withPending.Attachments = append(withPending.Attachments, a)
	}
	if err := store.Save(&withPending); err != nil {
		return nil, cnierr.Wrap(cnierr.IOFailure, err)
	}
	if err := store.MarkAdding(id); err != nil {
		return nil, errors.Join(cnierr.Wrap(cnierr.IOFailure, err), store.Save(rec))
	}
	defer store.Added(id)
	sb := r.sandbox()
	// Removals first: a name or an address they free may be what an
	// addition asks for.
	if len(pl.removedRun) > 0 {
		if err := r.runner().Del(ctx, sb, pl.removedRun); err != nil {
			return nil, errors.Join(err, store.Save(rec)) // all recorded still: the next try, or the sandbox's DEL, retries
		}
	}
	out := &Replugged{}
	for _, a := range pl.removed {
		out.Removed = append(out.Removed, a.IfName+" ("+a.StatusName+")")
	}
	var results []types.Result
	var err error
	if len(pl.addRun) > 0 {
		results, err = r.runner().Add(ctx, sb, pl.addRun)
	}
	final := *rec
	if err != nil {
		// Failed additions are not recorded, even when their rollback
		// failed too: the usual cause is a delegate that cannot run at all
		// (its plugin is missing), whose DEL would fail for ever and then
		// block the sandbox's DEL, the pod's deletion with it. The
		// rollback's failure is in the error and the log. The removals
		// stand.
		var rb *attach.RollbackError
		if errors.As(err, &rb) {
			r.log.Errorf("hot-plug: rolling back the additions failed too; they are not recorded: %v", rb.Err)
		}
		final.Attachments = slices.Clone(pl.failed)
		keepStatus(&final, statuses)
		if serr := store.Save(&final); serr != nil {
			return nil, errors.Join(err, cnierr.Wrap(cnierr.IOFailure, serr))
		}
		if len(pl.removed) > 0 {
			err = errors.Join(err, publish(ctx, api, pod, &final, out, statuses))
		}
		return out, err
	}
	for j, a := range pl.added {
		entries, err := netstatus.Build([]netstatus.Source{{Name: a.StatusName, IfName: a.IfName, Result: results[j]}})
		if err != nil {
			return nil, cnierr.Wrap(cnierr.Internal, err)
		}
		statuses[a.IfName] = entries
		out.Added = append(out.Added, a.IfName+" ("+a.StatusName+")")
	}
	final.Attachments = slices.Clone(pl.done)
	keepStatus(&final, statuses)
	if err := store.Save(&final); err != nil {
		return nil, cnierr.Wrap(cnierr.IOFailure, err)
	}
	return out, publish(ctx, api, pod, &final, out, statuses)
}

// sandboxOf returns the container ID of pod's sandbox on this node: the
// newest record of its UID ("" when none).
func sandboxOf(store *cache.Store, pod *corev1.Pod) (string, error) {
	ids, err := store.List()
	if err != nil {
		return "", cnierr.Wrap(cnierr.IOFailure, err)
	}
	uid := []byte(`"podUID":"` + string(pod.UID) + `"`)
	var best string
	var newest int64
	for _, id := range ids {
		path := store.Path(id)
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(data, uid) {
			continue
		}
		fi, err := os.Stat(path)
		if err == nil && (best == "" || fi.ModTime().UnixNano() > newest) {
			best, newest = id, fi.ModTime().UnixNano()
		}
	}
	return best, nil
}

// encodeCNIArgs is the CNI_ARGS string of recorded pairs.
func encodeCNIArgs(pairs [][2]string) string {
	kv := make([]string, len(pairs))
	for i, p := range pairs {
		kv[i] = p[0] + "=" + p[1]
	}
	return strings.Join(kv, ";")
}

// currentStatus returns the network-status entries of the recorded
// attachments by interface: from the record once a hot-plug stored them,
// else from the pod's annotation (what the ADD wrote).
func currentStatus(rec *cache.Record, pod *corev1.Pod) map[string][]netstatus.Entry {
	out := map[string][]netstatus.Entry{}
	var fromPod []netstatus.Entry
	_ = json.Unmarshal([]byte(pod.Annotations[netselect.NetworkStatusAnnotation]), &fromPod)
	for _, a := range rec.Attachments {
		var e []netstatus.Entry
		if len(a.Status) > 0 && json.Unmarshal(a.Status, &e) == nil {
			out[a.IfName] = e
			continue
		}
		for _, pe := range fromPod {
			if pe.Interface == a.IfName && pe.Name == a.StatusName {
				out[a.IfName] = append(out[a.IfName], pe)
			}
		}
	}
	return out
}

// publish writes the pod's network-status from the record and the events
// of the change.
func publish(ctx context.Context, api API, pod *corev1.Pod, rec *cache.Record, out *Replugged, statuses map[string][]netstatus.Entry) error {
	var entries []netstatus.Entry
	for _, a := range rec.Attachments {
		entries = append(entries, statuses[a.IfName]...)
	}
	value, err := netstatus.Marshal(entries)
	if err != nil {
		return err
	}
	var events []kube.Event
	for _, e := range entries {
		if slices.Contains(out.Added, e.Interface+" ("+e.Name+")") {
			events = append(events, kube.Event{Type: corev1.EventTypeNormal, Reason: "AddedInterface",
				Message: fmt.Sprintf("Add %s %v from %s (hot-plug)", e.Interface, e.IPs, e.Name)})
		}
	}
	for _, rm := range out.Removed {
		events = append(events, kube.Event{Type: corev1.EventTypeNormal, Reason: "RemovedInterface",
			Message: "Remove " + rm + " (hot-plug)"})
	}
	err = api.SetNetworkStatus(ctx, pod.Namespace, pod.Name, value)
	return errors.Join(err, api.RecordEvents(ctx, pod, events))
}

// keepStatus stores each attachment's network-status entries in rec.
func keepStatus(rec *cache.Record, statuses map[string][]netstatus.Entry) {
	for i := range rec.Attachments {
		a := &rec.Attachments[i]
		if e, ok := statuses[a.IfName]; ok {
			if raw, err := json.Marshal(e); err == nil {
				a.Status = raw
			}
		}
	}
}
